/**
 * deno task bench:faces [--reps N]
 * The imported face-api recogniser vs face-api itself, on every face face-api's detector finds in its
 * demo photos: embedding agreement of the kit's fp32/fp16/int8 bundles (ORT wasm, 1 thread), and
 * per-face latency at batch 1 and 8 side by side with face-api on tfjs-wasm (1 thread).
 */
import { loadBundle } from "../../runtime/src/deploy_model.ts";
import type { BundleDType } from "../../runtime/src/io/bundle.ts";
import { createSession } from "../../runtime/src/backends/mod.ts";
import { preprocess } from "../../runtime/src/preprocess.ts";
import { type F32, f32 } from "../../runtime/src/tensor.ts";
import { faceApiBundle, faceApiDescriptors, faceApiSampleCrops, timeFaceApi } from "../data/faceapi_ref.ts";
import { fmtBytes, main, parseCli } from "./_cli.ts";

const USAGE = "usage: deno task bench:faces [--reps N]  (median of N timed runs per batch size, default 5)";
const SZ = 3 * 150 * 150;

function cos(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) ab += a[i] * b[i], aa += a[i] * a[i], bb += b[i] * b[i];
  return ab / Math.sqrt(aa * bb);
}

/** Agreement of `rows` with the reference: max abs, min cosine, max change of any pairwise cosine. */
function agreement(rows: Float32Array[], ref: Float32Array[]) {
  let maxAbs = 0, minCos = 1, maxPair = 0;
  for (let i = 0; i < ref.length; i++) {
    for (let j = 0; j < ref[i].length; j++) maxAbs = Math.max(maxAbs, Math.abs(rows[i][j] - ref[i][j]));
    minCos = Math.min(minCos, cos(rows[i], ref[i]));
    for (let k = i + 1; k < ref.length; k++) {
      maxPair = Math.max(maxPair, Math.abs(cos(rows[i], rows[k]) - cos(ref[i], ref[k])));
    }
  }
  return { maxAbs, minCos, maxPair };
}

async function median(fn: () => Promise<unknown>, reps: number): Promise<number> {
  await fn();
  const ts: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await fn();
    ts.push(performance.now() - t0);
  }
  return ts.sort((a, b) => a - b)[Math.floor(reps / 2)];
}

await main(async () => {
  const { values } = parseCli(USAGE, { reps: { type: "string", default: "5" } });
  const reps = Number(values.reps);
  const crops = await faceApiSampleCrops();
  console.log(
    `faces    ${crops.n} crops (150×150) from face-api demo/sample1-6.jpg (${crops.perPhoto.join("+")})`,
  );
  const ref = await faceApiDescriptors(crops.pixels, crops.n);
  for (const dtype of ["fp32", "fp16", "int8"] as BundleDType[]) {
    const bytes = await faceApiBundle(dtype);
    const model = await loadBundle(bytes);
    const s = await createSession(model, { backend: "wasm", threads: 1 });
    const rows: Float32Array[] = [];
    for (let i = 0; i < crops.n; i += 8) {
      const n = Math.min(8, crops.n - i);
      const x = preprocess(model.meta.preprocess, crops.pixels.subarray(i * SZ, (i + n) * SZ), [
        n,
        3,
        150,
        150,
      ]);
      const y = await s.run(x);
      for (let k = 0; k < n; k++) rows.push(y.data.slice(k * 128, (k + 1) * 128));
    }
    const a = agreement(rows, ref);
    const lat: string[] = [];
    for (const b of [1, 8]) {
      const x: F32 = f32([b, 3, 150, 150], new Float32Array(b * SZ).fill(0.1));
      lat.push(`b${b} ${((await median(() => s.run(x), reps)) / b).toFixed(1)} ms/face`);
    }
    console.log(
      `${dtype.padEnd(8)} bundle ${fmtBytes(bytes.length)}; vs face-api: max abs ${
        a.maxAbs.toExponential(2)
      }, ` +
        `min cosine ${a.minCos.toFixed(6)}, max |Δ pair cosine| ${a.maxPair.toExponential(2)}; ` +
        `ORT wasm 1 thread (${s.precision}) ${lat.join(", ")}`,
    );
    await s.dispose();
  }
  const fa: string[] = [];
  for (const b of [1, 8]) {
    fa.push(`b${b} ${((await timeFaceApi(crops.pixels, b, reps)) / b).toFixed(1)} ms/face`);
  }
  console.log(`face-api tfjs-wasm 1 thread: ${fa.join(", ")}`);
});
