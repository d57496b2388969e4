import assert from "node:assert/strict";
import { zipSync } from "fflate";
import { CorruptFileError, UnsupportedError } from "../../runtime/src/errors.ts";
import { readNpy, readNpz, writeNpy, writeNpz } from "../../runtime/src/io/mod.ts";
import type { StateDict, Tensor } from "../../runtime/src/tensor.ts";

function npy(header: string, data: Uint8Array, version = 1): Uint8Array {
  const h = new TextEncoder().encode(header);
  const pre = version === 1 ? 10 : 12;
  const out = new Uint8Array(pre + h.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  if (version === 1) new DataView(out.buffer).setUint16(8, h.length, true);
  else new DataView(out.buffer).setUint32(8, h.length, true);
  out.set(h, pre);
  out.set(data, pre + h.length);
  return out;
}

const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

Deno.test("npy: round trip of numpy dtypes, 0-d, empty, 64-byte aligned header", () => {
  const ts: Tensor[] = [
    { dtype: "float32", shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
    { dtype: "float64", shape: [1], data: new Float64Array([0.1]) },
    { dtype: "float16", shape: [2], data: new Uint16Array([0x3c00, 0x8000]) },
    { dtype: "int64", shape: [], data: new BigInt64Array([-3n]) },
    { dtype: "int32", shape: [1, 1, 2], data: new Int32Array([5, -5]) },
    { dtype: "int16", shape: [1], data: new Int16Array([-1]) },
    { dtype: "int8", shape: [2], data: new Int8Array([-128, 127]) },
    { dtype: "uint8", shape: [2], data: new Uint8Array([0, 255]) },
    { dtype: "bool", shape: [2], data: new Uint8Array([1, 0]) },
    { dtype: "float32", shape: [0, 3], data: new Float32Array(0) },
  ];
  for (const t of ts) {
    const b = writeNpy(t);
    const hl = new DataView(b.buffer).getUint16(8, true);
    assert.equal((10 + hl) % 64, 0);
    assert.equal(b[10 + hl - 1], 0x0a);
    const u = readNpy(b);
    assert.equal(u.dtype, t.dtype);
    assert.deepEqual(u.shape, t.shape);
    assert.deepEqual(bytes(u.data), bytes(t.data));
  }
  const h = new TextDecoder().decode(writeNpy(ts[0]).subarray(10, 80));
  assert.match(h, /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \}/);
  assert.throws(
    () => writeNpy({ dtype: "bfloat16", shape: [1], data: new Uint16Array(1) }),
    UnsupportedError,
  );
});

Deno.test("npy: fortran_order arrays are reordered to C order; v2 headers read", () => {
  // numpy.asfortranarray([[1,2,3],[4,5,6]]) stores column by column: 1 4 2 5 3 6.
  const col = bytes(new Float32Array([1, 4, 2, 5, 3, 6]));
  const t = readNpy(npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }\n", col));
  assert.deepEqual([...(t.data as Float32Array)], [1, 2, 3, 4, 5, 6]);
  const t3 = readNpy(
    npy(
      "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 2, 2), }\n",
      bytes(new Int32Array([0, 4, 2, 6, 1, 5, 3, 7])),
    ),
  );
  assert.deepEqual([...(t3.data as Int32Array)], [0, 1, 2, 3, 4, 5, 6, 7]);
  const v2 = readNpy(
    npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }\n", bytes(new Float64Array([2])), 2),
  );
  assert.deepEqual([...(v2.data as Float64Array)], [2]);
});

Deno.test("npy: bad files are typed errors", () => {
  const d4 = new Uint8Array(4);
  const corrupt: Uint8Array[] = [
    new Uint8Array(0),
    new Uint8Array([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1]),
    npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", d4), // data too short
    npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(8)), // too long
    npy("{'descr': '<f4', 'shape': (1,), }", d4),
    npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", d4),
    npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", d4),
    npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } junk", d4),
    npy("{'descr': '<f4, 'fortran_order': False, 'shape': (1,), }", d4),
    npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", d4),
    npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999), }", d4),
  ];
  const big = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", d4);
  new DataView(big.buffer).setUint16(8, 60000, true);
  corrupt.push(big);
  for (const b of corrupt) assert.throws(() => readNpy(b), CorruptFileError);
  for (const descr of [">f4", "|O", "<c8", "<U3", "<M8[s]"]) {
    assert.throws(
      () => readNpy(npy(`{'descr': '${descr}', 'fortran_order': False, 'shape': (1,), }`, d4)),
      UnsupportedError,
    );
  }
  assert.throws(
    () => readNpy(npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", d4)),
    UnsupportedError,
  );
  assert.throws(() => readNpy(npy("{}", d4, 9)), UnsupportedError);
});

Deno.test("npz: round trip (stored and deflated members)", () => {
  const sd: StateDict = new Map<string, Tensor>([
    ["a.weight", { dtype: "float32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }],
    ["a.num_batches_tracked", { dtype: "int64", shape: [], data: new BigInt64Array([0n]) }],
  ]);
  const z = writeNpz(sd);
  assert.deepEqual(writeNpz(sd), z);
  const back = readNpz(z);
  assert.deepEqual([...back.keys()], [...sd.keys()]);
  assert.deepEqual(bytes(back.get("a.weight")!.data), bytes(sd.get("a.weight")!.data));
  // numpy.savez_compressed uses DEFLATE.
  const deflated = zipSync({ "x.npy": [writeNpy(sd.get("a.weight")!), { level: 9 }] });
  assert.deepEqual([...(readNpz(deflated).get("x")!.data as Float32Array)], [1, 2, 3, 4]);
  assert.throws(() => readNpz(zipSync({ "x.txt": new Uint8Array(1) })), CorruptFileError);
});
