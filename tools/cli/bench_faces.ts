/**
 * deno task bench:faces [--reps N] [--student BUNDLE]
 * The imported face-api recogniser vs face-api itself, on every face face-api's detector finds in its
 * demo photos: embedding agreement of the kit's fp32/fp16/int8 bundles (ORT wasm, 1 thread), and
 * per-face latency at batch 1 and 8 side by side with face-api on tfjs-wasm (1 thread) and, with
 * --student, a distilled student bundle (same loop, so the ratios come from one run).
 */
import { loadBundle } from "../../runtime/src/deploy_model.ts";
import type { BundleDType } from "../../runtime/src/io/bundle.ts";
import { createSession, type Session } from "../../runtime/src/backends/mod.ts";
import { preprocess } from "../../runtime/src/image/normalize.ts";
import { type F32, f32 } from "../../runtime/src/tensor.ts";
import { faceApiBundle, faceApiDescriptors, faceApiSampleCrops } from "../data/faceapi_ref.ts";
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import { fmtBytes, main, parseCli } from "./_cli.ts";

const USAGE = "usage: deno task bench:faces [--reps N] [--student BUNDLE]\n" +
  "  (median of N interleaved rounds per batch size, default 7; --student adds a distilled bundle's latency)";
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

/** Median ms per call of each function, run interleaved (round-robin) so load changes hit all alike. */
async function interleaved(fns: (() => Promise<unknown>)[], reps: number): Promise<number[]> {
  for (const f of fns) await f();
  const ts: number[][] = fns.map(() => []);
  for (let r = 0; r < reps; r++) {
    for (let i = 0; i < fns.length; i++) {
      const t0 = performance.now();
      await fns[i]();
      ts[i].push(performance.now() - t0);
    }
  }
  return ts.map((t) => t.sort((a, b) => a - b)[Math.floor(reps / 2)]);
}

await main(async () => {
  const { values } = parseCli(USAGE, {
    reps: { type: "string", default: "7" },
    student: { type: "string" },
  });
  const reps = Number(values.reps);
  const crops = await faceApiSampleCrops();
  console.log(
    `faces    ${crops.n} crops (150×150) from face-api demo/sample1-6.jpg (${crops.perPhoto.join("+")})`,
  );
  const ref = await faceApiDescriptors(crops.pixels, crops.n);
  const sessions: [string, Session][] = [];
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
    console.log(
      `${dtype.padEnd(8)} bundle ${fmtBytes(bytes.length)}; vs face-api: max abs ${
        a.maxAbs.toExponential(2)
      }, ` +
        `min cosine ${a.minCos.toFixed(6)}, max |Δ pair cosine| ${a.maxPair.toExponential(2)}`,
    );
    if (dtype === "fp16") await s.dispose(); // fp16 bundles are upcast at load: the fp32 graph's speed
    else sessions.push([dtype, s]);
  }
  const student = values.student ? await studentRunner(values.student, crops.pixels) : undefined;
  if (student) sessions.push([student.name, student.session]);
  // Latency side by side in one interleaved loop: ORT wasm (fp32 and int8 bundles [, student]) vs face-api
  // tfjs-wasm.
  for (const b of [1, 8]) {
    const x: F32 = f32([b, 3, 150, 150], Float32Array.from(crops.pixels.subarray(0, b * SZ), (v) => v / 255));
    const fns = [
      ...sessions.map(([d, s]) => () => s.run(d === student?.name ? student.input(b) : x)),
      () => faceApiDescriptors(crops.pixels, b),
    ];
    const ms = (await interleaved(fns, reps)).map((t) => t / b);
    const fa = ms[ms.length - 1];
    const cols = sessions.map(([d], i) =>
      `ORT wasm ${d} ${ms[i].toFixed(1)} ms (face-api ÷ this ${(fa / ms[i]).toFixed(2)})`
    );
    console.log(
      `batch ${b}  per face: ${cols.join(", ")}, face-api tfjs-wasm ${fa.toFixed(1)} ms  [${reps} rounds]`,
    );
    if (student) {
      const st = ms[sessions.length - 1];
      const ratios = sessions.slice(0, -1).map(([d], i) => `ORT ${d} ${(ms[i] / st).toFixed(1)}×`);
      console.log(`batch ${b}  teacher ÷ student: ${ratios.join(", ")}, face-api ${(fa / st).toFixed(1)}×`);
    }
  }
  for (const [, s] of sessions) await s.dispose();
});

/** The student's session and inputs: each crop's centre window at the student's input size, normalised
 * with its own meta (latency does not depend on the pixels; this keeps them face-like). */
async function studentRunner(path: string, pixels: Uint8Array) {
  const bytes = await Deno.readFile(path);
  const model = await loadBundle(bytes);
  const [c, h, w] = model.desc.input as number[];
  if (c !== 3 || !(h > 0 && h <= 150) || !(w > 0 && w <= 150)) {
    throw new InvalidArgumentError(
      `--student: input [${model.desc.input}] is not a 3-channel image ≤ 150×150`,
    );
  }
  const n = pixels.length / SZ, y0 = (150 - h) >> 1, x0 = (150 - w) >> 1;
  const win = new Uint8Array(n * c * h * w);
  for (let i = 0; i < n * c; i++) {
    for (let y = 0; y < h; y++) {
      const src = i * 150 * 150 + (y0 + y) * 150 + x0;
      win.set(pixels.subarray(src, src + w), (i * h + y) * w);
    }
  }
  const x = preprocess(model.meta.preprocess, win, [n, c, h, w]);
  const session = await createSession(model, { backend: "wasm", threads: 1 });
  const name = `student ${model.dtype}`;
  console.log(`student  ${path}: bundle ${fmtBytes(bytes.length)}, input ${c}×${h}×${w}`);
  return { name, session, input: (b: number) => f32([b, c, h, w], x.data.slice(0, b * c * h * w)) };
}
