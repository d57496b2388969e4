import assert from "node:assert/strict";
import { CorruptFileError, InvalidArgumentError, UnsupportedError } from "../../runtime/src/errors.ts";
import {
  parseSafetensors,
  readSafetensors,
  readStateDict,
  writeSafetensors,
} from "../../runtime/src/io/mod.ts";
import type { StateDict, Tensor } from "../../runtime/src/tensor.ts";

function allDtypes(): StateDict {
  return new Map<string, Tensor>([
    ["f32", { dtype: "float32", shape: [2, 3], data: new Float32Array([1, -2, 3.5, 0, -0, Infinity]) }],
    ["f64", { dtype: "float64", shape: [2], data: new Float64Array([Math.PI, -1e300]) }],
    ["f16", { dtype: "float16", shape: [3], data: new Uint16Array([0x3c00, 0x7bff, 0x8001]) }],
    ["bf16", { dtype: "bfloat16", shape: [1, 2], data: new Uint16Array([0x3f80, 0xc000]) }],
    ["i64", { dtype: "int64", shape: [], data: new BigInt64Array([-(2n ** 62n)]) }],
    ["i32", { dtype: "int32", shape: [2], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1]) }],
    ["i16", { dtype: "int16", shape: [2], data: new Int16Array([-32768, 32767]) }],
    ["i8", { dtype: "int8", shape: [2], data: new Int8Array([-128, 127]) }],
    ["u8", { dtype: "uint8", shape: [3], data: new Uint8Array([0, 128, 255]) }],
    ["bool", { dtype: "bool", shape: [2], data: new Uint8Array([1, 0]) }],
    ["empty", { dtype: "float32", shape: [0, 5], data: new Float32Array(0) }],
    ["10", { dtype: "float32", shape: [1], data: new Float32Array([10]) }], // integer-like name keeps its order
  ]);
}

function raw(t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** Build a file from a header object (or raw header text) and a buffer. */
function file(header: unknown, data: Uint8Array = new Uint8Array(0), lengthOverride?: bigint): Uint8Array {
  const h = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

Deno.test("safetensors: round trip of every dtype, order and metadata kept", () => {
  const sd = allDtypes();
  const bytes = writeSafetensors(sd, { hello: "world", n: "3" });
  const { tensors, metadata } = readSafetensors(bytes);
  assert.deepEqual(metadata, { hello: "world", n: "3" });
  assert.deepEqual([...tensors.keys()], [...sd.keys()]);
  for (const [k, t] of sd) {
    const u = tensors.get(k)!;
    assert.equal(u.dtype, t.dtype, k);
    assert.deepEqual(u.shape, t.shape, k);
    assert.equal(u.data.constructor, t.data.constructor, k);
    assert.deepEqual(raw(u), raw(t), k);
  }
  // Deterministic, 8-byte aligned buffer start, space padding.
  assert.deepEqual(writeSafetensors(sd, { hello: "world", n: "3" }), bytes);
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  assert.match(
    header,
    /^\{"__metadata__":\{"hello":"world","n":"3"\},"f32":\{"dtype":"F32","shape":\[2,3\],"data_offsets":\[0,24\]\}/,
  );
  assert.match(header, / *$/);
  assert.equal(readStateDict(bytes).size, sd.size);
});

Deno.test("safetensors: reads the format's documented example", () => {
  // Example from the safetensors README: one I32 2x2 tensor plus metadata.
  const data = new Uint8Array(new Int32Array([1, 2, 3, 4]).buffer);
  const bytes = file({
    test: { dtype: "I32", shape: [2, 2], data_offsets: [0, 16] },
    __metadata__: { foo: "bar" },
  }, data);
  const { tensors, metadata } = readSafetensors(bytes);
  assert.deepEqual(metadata, { foo: "bar" });
  assert.deepEqual([...(tensors.get("test")!.data as Int32Array)], [1, 2, 3, 4]);
  // An unpadded header (odd length) is valid too; the copy makes data aligned.
  const odd = file(
    { a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } },
    new Uint8Array([0, 0, 128, 63]),
  );
  assert.deepEqual([...(readSafetensors(odd).tensors.get("a")!.data as Float32Array)], [1]);
});

Deno.test("safetensors: malformed headers are CorruptFileError", () => {
  const e4 = { dtype: "F32", shape: [1], data_offsets: [0, 4] };
  const d4 = new Uint8Array(4);
  const bad: [string, Uint8Array][] = [
    ["empty file", new Uint8Array(0)],
    ["short length", new Uint8Array(5)],
    ["length past end", file({ a: e4 }, d4, 1000n)],
    ["length > 100MB", file({ a: e4 }, d4, 100_000_001n)],
    ["length high word", file({ a: e4 }, d4, 2n ** 40n)],
    ["not json", file("{not json}", d4)],
    ["not an object", file("[1,2]", d4)],
    ["not utf8", file(new TextDecoder("latin1").decode(new Uint8Array([0x7b, 0xff, 0x7d])), d4)],
    ["entry not object", file({ a: 3 }, d4)],
    ["no dtype", file({ a: { shape: [1], data_offsets: [0, 4] } }, d4)],
    ["negative shape", file({ a: { ...e4, shape: [-1] } }, d4)],
    ["float shape", file({ a: { ...e4, shape: [1.5] } }, d4)],
    ["shape not array", file({ a: { ...e4, shape: "1" } }, d4)],
    ["offsets reversed", file({ a: { ...e4, data_offsets: [4, 0] } }, d4)],
    ["offsets past buffer", file({ a: { ...e4, data_offsets: [0, 8] } }, d4)],
    ["offsets 3 items", file({ a: { ...e4, data_offsets: [0, 4, 8] } }, d4)],
    ["size mismatch", file({ a: { ...e4, shape: [2] } }, d4)],
    ["gap", file({ a: { ...e4, data_offsets: [4, 8] } }, new Uint8Array(8))],
    ["trailing bytes", file({ a: e4 }, new Uint8Array(8))],
    ["overlap", file({ a: e4, b: e4 }, d4)],
    [
      "duplicate key (JSON keeps the last, leaving a gap)",
      file(
        '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
        new Uint8Array(8),
      ),
    ],
    ["metadata value not string", file({ __metadata__: { a: 1 }, a: e4 }, d4)],
    ["metadata not object", file({ __metadata__: "x", a: e4 }, d4)],
    ["deep nesting", file("{" + '"a":'.repeat(1) + "[".repeat(100000) + "]".repeat(100000) + "}", d4)],
  ];
  for (const [what, bytes] of bad) assert.throws(() => readSafetensors(bytes), CorruptFileError, what);
  assert.throws(
    () => readSafetensors(file({ a: { dtype: "F8_E4M3", shape: [4], data_offsets: [0, 4] } }, d4)),
    UnsupportedError,
  );
  // parseSafetensors validates without copying.
  assert.equal(parseSafetensors(file({ a: e4 }, d4)).entries[0].name, "a");
});

Deno.test("safetensors: writer refuses inconsistent tensors", () => {
  const bad: StateDict[] = [
    new Map([["a", { dtype: "float32", shape: [3], data: new Float32Array(2) }]]),
    new Map([["a", { dtype: "float32", shape: [2], data: new Float64Array(2) }]]),
    new Map([["__metadata__", { dtype: "float32", shape: [1], data: new Float32Array(1) }]]),
  ];
  for (const sd of bad) assert.throws(() => writeSafetensors(sd), InvalidArgumentError);
  assert.throws(() => writeSafetensors(new Map(), { a: 1 as unknown as string }), InvalidArgumentError);
  // An empty state_dict is a valid (tiny) file.
  assert.equal(readSafetensors(writeSafetensors(new Map())).tensors.size, 0);
});
