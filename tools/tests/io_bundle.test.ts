import assert from "node:assert/strict";
import {
  CorruptFileError,
  IntegrityError,
  InvalidArgumentError,
  UnsupportedError,
} from "../../runtime/src/errors.ts";
import {
  dequantize,
  dequantizeInt8PerChannel,
  parseSafetensors,
  quantizeInt8PerChannel,
  readBundle,
  readPth,
  writeBundle,
  writeSafetensors,
} from "../../runtime/src/io/mod.ts";
import { halfToFloat, type StateDict, type Tensor } from "../../runtime/src/tensor.ts";
import { REFDATA, rng } from "./io_testutil.ts";

const MODEL = { arch: "RepMLPBlock", kwargs: { in_channels: 8, h: 4, w: 4 } };
const META = { labels: ["a", "b"], threshold: 0.42, preprocessing: { mean: [0.5], std: [0.25] } };

function randomSD(seed: number): StateDict {
  const r = rng(seed);
  const t = (shape: number[], scale = 1): Tensor => {
    const n = shape.reduce((a, b) => a * b, 1);
    const d = new Float32Array(n);
    for (let i = 0; i < n; i++) d[i] = (r() * 2 - 1) * scale;
    return { dtype: "float32", shape, data: d };
  };
  return new Map<string, Tensor>([
    ["big.weight", t([512, 1024], 0.1)],
    ["conv.weight", t([64, 16, 3, 3], 2)], // 9216 elements, 4-d
    ["big.bias", t([512])],
    ["small.weight", t([4, 8])], // < 1024 elements: stays F32
    ["vec", t([2048])], // 1-d: F16 in fp16 bundles, F32 in int8 bundles
    ["bn.num_batches_tracked", { dtype: "int64", shape: [], data: new BigInt64Array([0n]) }],
  ]);
}

function f32data(t: Tensor): Float32Array {
  assert.equal(t.dtype, "float32");
  return t.data as Float32Array;
}

Deno.test("bundle: fp32 round trip is exact and carries model/meta", async () => {
  const sd = randomSD(1);
  const bytes = await writeBundle({ model: MODEL, tensors: sd, dtype: "fp32", meta: META });
  assert.deepEqual(await writeBundle({ model: MODEL, tensors: sd, dtype: "fp32", meta: META }), bytes);
  const b = await readBundle(bytes);
  assert.equal(b.dtype, "fp32");
  assert.deepEqual(b.model, MODEL);
  assert.deepEqual(b.meta, META);
  assert.match(b.sha256, /^[0-9a-f]{64}$/);
  assert.equal(b.metadata.format, "repmlp-edge-bundle");
  assert.equal(b.metadata.format_version, "1");
  assert.deepEqual([...b.tensors.keys()], [...sd.keys()]);
  for (const [k, t] of sd) {
    assert.deepEqual(b.tensors.get(k)!.shape, t.shape);
    assert.deepEqual(b.tensors.get(k)!.data, t.data, k);
  }
});

Deno.test("bundle: fp16 stores big float tensors as F16 within half precision", async () => {
  const sd = randomSD(2);
  const b = await readBundle(await writeBundle({ model: MODEL, tensors: sd, dtype: "fp16" }));
  const want: Record<string, string> = {
    "big.weight": "float16",
    "conv.weight": "float16",
    "vec": "float16",
    "big.bias": "float32",
    "small.weight": "float32",
    "bn.num_batches_tracked": "int64",
  };
  for (const [k, dt] of Object.entries(want)) assert.equal(b.raw.get(k)!.dtype, dt, k);
  let worst = 0;
  for (const [k, t] of sd) {
    if (t.dtype !== "float32") continue;
    const x = t.data as Float32Array;
    const y = f32data(b.tensors.get(k)!);
    for (let i = 0; i < x.length; i++) {
      // Round to nearest half: relative error ≤ 2^-11 for normals, absolute ≤ 2^-25 in the subnormal range.
      const err = Math.abs(x[i] - y[i]);
      assert.ok(err <= Math.abs(x[i]) * 2 ** -11 + 2 ** -25, `${k}[${i}]: ${x[i]} → ${y[i]}`);
      worst = Math.max(worst, err / Math.max(Math.abs(x[i]), 2 ** -14));
    }
    if (b.raw.get(k)!.dtype === "float32") assert.deepEqual(y, x, `${k} stays exact`);
  }
  assert.ok(worst <= 2 ** -11);
  // raw F16 words decode to the dequantized values.
  const rawBig = b.raw.get("big.weight")!.data as Uint16Array;
  assert.equal(halfToFloat(rawBig[7]), f32data(b.tensors.get("big.weight")!)[7]);
  // A tensor whose values overflow half precision stays F32 instead of turning into Inf.
  const huge = new Float32Array(2048).fill(1e5);
  const hb = await readBundle(
    await writeBundle({
      model: {},
      dtype: "fp16",
      tensors: new Map([["h", { dtype: "float32", shape: [2048], data: huge }]]),
    }),
  );
  assert.equal(hb.raw.get("h")!.dtype, "float32");
  assert.deepEqual(hb.tensors.get("h")!.data, huge);
});

Deno.test("bundle: int8 per-channel weights are within scale/2 of the original", async () => {
  const sd = randomSD(3);
  const b = await readBundle(await writeBundle({ model: MODEL, tensors: sd, dtype: "int8", meta: META }));
  assert.deepEqual([...b.tensors.keys()], [...sd.keys()]);
  assert.equal(b.raw.get("big.weight")!.dtype, "int8");
  assert.deepEqual(b.raw.get("big.weight.__scale")!.shape, [512]);
  assert.equal(b.raw.get("conv.weight")!.dtype, "int8");
  assert.deepEqual(b.raw.get("conv.weight.__scale")!.shape, [64]);
  for (const k of ["vec", "big.bias", "small.weight"]) assert.equal(b.raw.get(k)!.dtype, "float32", k);
  assert.equal(b.raw.get("bn.num_batches_tracked")!.dtype, "int64");
  for (const k of ["big.weight", "conv.weight"]) {
    const x = f32data(sd.get(k)!);
    const y = f32data(b.tensors.get(k)!);
    const q = b.raw.get(k)!.data as Int8Array;
    const s = b.raw.get(`${k}.__scale`)!.data as Float32Array;
    const row = x.length / s.length;
    let maxQ = 0;
    for (let i = 0; i < x.length; i++) {
      const sc = s[Math.floor(i / row)];
      assert.ok(Math.abs(x[i] - y[i]) <= sc / 2 * (1 + 1e-6) + 1e-12, `${k}[${i}]`);
      assert.ok(q[i] >= -127 && q[i] <= 127);
      maxQ = Math.max(maxQ, Math.abs(q[i]));
    }
    assert.equal(maxQ, 127); // symmetric: each channel's max maps to ±127
  }
  const raw = await readBundle(await writeBundle({ model: MODEL, tensors: sd, dtype: "int8" }), {
    dequantize: false,
  });
  assert.equal(raw.tensors, raw.raw);
  assert.deepEqual([...dequantize(raw.raw).keys()], [...sd.keys()]);
});

Deno.test("bundle: quantize/dequantize helpers", () => {
  const t: Tensor = { dtype: "float32", shape: [3, 2], data: new Float32Array([0, 0, 1, -0.5, 254, -127]) };
  const { q, scale } = quantizeInt8PerChannel(t);
  assert.deepEqual([...scale.data], [1, Math.fround(1 / 127), 2]); // all-zero channel → scale 1
  assert.deepEqual([...q.data], [0, 0, 127, -64, 127, -64]); // -63.5 rounds away from zero
  const back = dequantizeInt8PerChannel(q, scale);
  assert.deepEqual(back.shape, [3, 2]);
  assert.equal(back.data[4], 254);
  assert.throws(
    () => quantizeInt8PerChannel({ dtype: "float32", shape: [1, 2], data: new Float32Array([NaN, 1]) }),
    InvalidArgumentError,
  );
  assert.throws(
    () => quantizeInt8PerChannel({ dtype: "int32", shape: [1], data: new Int32Array(1) }),
    InvalidArgumentError,
  );
  assert.throws(
    () => dequantizeInt8PerChannel(q, { dtype: "float32", shape: [2], data: new Float32Array(2) }),
    CorruptFileError,
  );
});

Deno.test("bundle: file sizes of a large tensor (fp16 ≤ 0.51×, int8 ≤ 0.27× of fp32)", async () => {
  const r = rng(4);
  const d = new Float32Array(512 * 1024).map(() => r() - 0.5);
  const sd: StateDict = new Map([["w", { dtype: "float32", shape: [512, 1024], data: d }]]);
  const sizes: Record<string, number> = {};
  for (const dtype of ["fp32", "fp16", "int8"] as const) {
    sizes[dtype] = (await writeBundle({ model: MODEL, tensors: sd, dtype, meta: META })).length;
  }
  const r16 = sizes.fp16 / sizes.fp32;
  const r8 = sizes.int8 / sizes.fp32;
  assert.ok(r16 <= 0.51, `fp16 ratio ${r16}`);
  assert.ok(r8 <= 0.27, `int8 ratio ${r8}`);
  console.log(
    `sizes (bytes): ${JSON.stringify(sizes)}; fp16/fp32 ${r16.toFixed(4)}, int8/fp32 ${r8.toFixed(4)}`,
  );
});

Deno.test("bundle: refdata deploy weights survive every dtype", async () => {
  const sd = readPth(Deno.readFileSync(`${REFDATA}net_block_c32_S4_p1x1_h7_k13_gp4/deploy.pth`));
  for (const dtype of ["fp32", "fp16", "int8"] as const) {
    const b = await readBundle(await writeBundle({ model: MODEL, tensors: sd, dtype }));
    const x = f32data(sd.get("fc3.weight")!);
    const y = f32data(b.tensors.get("fc3.weight")!);
    let m = 0;
    let amax = 0;
    for (let i = 0; i < x.length; i++) {
      m = Math.max(m, Math.abs(x[i] - y[i]));
      amax = Math.max(amax, Math.abs(x[i]));
    }
    const bound = dtype === "fp32" ? 0 : dtype === "fp16" ? amax * 2 ** -11 : amax / 254 * (1 + 1e-6);
    assert.ok(m <= bound, `${dtype}: max err ${m} > ${bound}`);
  }
});

Deno.test("bundle: tampering is an IntegrityError", async () => {
  const sd = randomSD(5);
  const bytes = await writeBundle({ model: MODEL, tensors: sd, dtype: "int8", meta: META });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  // 1) one bit in the data buffer.
  const a = bytes.slice();
  a[8 + n + 1000] ^= 1;
  await assert.rejects(() => readBundle(a), IntegrityError);
  // 2) a metadata value changed in place (same length).
  const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  const swap = (from: string, to: string) => {
    assert.equal(from.length, to.length);
    assert.ok(header.includes(from), from);
    const out = bytes.slice();
    out.set(new TextEncoder().encode(header.replace(from, to)), 8);
    return out;
  };
  await assert.rejects(() => readBundle(swap("0.42", "0.99")), IntegrityError);
  // 3) a tensor shape changed consistently with its byte size.
  await assert.rejects(() => readBundle(swap('"shape":[512,1024]', '"shape":[1024,512]')), IntegrityError);
  // 4) the hash itself edited.
  const h = JSON.parse(header).__metadata__.sha256 as string;
  await assert.rejects(() => readBundle(swap(h, (h[0] === "0" ? "1" : "0") + h.slice(1))), IntegrityError);
});

Deno.test("bundle: truncated, foreign or malformed files are CorruptFileError", async () => {
  const bytes = await writeBundle({ model: MODEL, tensors: randomSD(6), dtype: "fp16" });
  for (const len of [0, 3, 8, 9, 100, 1000, bytes.length - 1000, bytes.length - 1]) {
    await assert.rejects(() => readBundle(bytes.subarray(0, len)), CorruptFileError, `len ${len}`);
  }
  await assert.rejects(
    () => readBundle(new TextEncoder().encode("PK\x03\x04 definitely a zip file")),
    (e) => e instanceof CorruptFileError && /not a repmlp-edge bundle/.test(e.message),
  );
  // A valid safetensors file without bundle metadata.
  const plain = writeSafetensors(
    new Map([["a", { dtype: "float32", shape: [1], data: new Float32Array(1) }]]),
  );
  await assert.rejects(
    () => readBundle(plain),
    (e) => e instanceof CorruptFileError && /not a repmlp-edge bundle/.test(e.message),
  );
  // Newer format version.
  const v2 = writeSafetensors(new Map(), { format: "repmlp-edge-bundle", format_version: "2" });
  await assert.rejects(() => readBundle(v2), UnsupportedError);
  // Bad writer input.
  await assert.rejects(
    () => writeBundle({ model: MODEL, tensors: randomSD(7), dtype: "int4" as "int8" }),
    InvalidArgumentError,
  );
  await assert.rejects(
    () => writeBundle({ model: { n: 1n }, tensors: new Map(), dtype: "fp32" }),
    InvalidArgumentError,
  );
  const reserved: StateDict = new Map([["x.__scale", {
    dtype: "float32",
    shape: [1],
    data: new Float32Array(1),
  }]]);
  await assert.rejects(
    () => writeBundle({ model: MODEL, tensors: reserved, dtype: "fp32" }),
    InvalidArgumentError,
  );
  // The layout is a plain safetensors file any reader can open.
  assert.ok(parseSafetensors(bytes).entries.length > 0);
});

Deno.test("bundle: portable modules use no Deno or node APIs (Cloudflare Workers)", () => {
  for (const f of ["bundle", "safetensors", "npy", "pickle", "pth", "zip", "dtypes", "statedict", "mod"]) {
    const src = Deno.readTextFileSync(new URL(`../../runtime/src/io/${f}.ts`, import.meta.url))
      .replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, ""); // code only, not comments
    assert.ok(!/\bDeno\.|from "node:|from "\.\/files\.ts"/.test(src), `src/io/${f}.ts`);
  }
});
