/**
 * Face detector latency on the face-api demo photos (1920 px group photos): one model run, and what
 * the API runs per photo — the largest face (whole-image windows on a ~1/2-scale decode) and all
 * faces down to 40 px (the pyramid) — per backend.
 *
 *   deno run -A --node-modules-dir=auto tools/cli/bench_detect.ts [--backend wasm|native] [--reps 3]
 */
import { parseArgs } from "node:util";
import { FaceDetector, findFaces, planWindows, windowInput } from "../../runtime/src/face/detect.ts";
import { decodeImage, openImage } from "../../runtime/src/image/mod.ts";
import { readSamplePhoto, SAMPLE_PHOTOS } from "../data/face_photos.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { backend: { type: "string" }, reps: { type: "string" } },
});
const backend = (values.backend ?? "wasm") as "wasm" | "native";
const reps = Number(values.reps ?? 3);
const det = await FaceDetector.create(
  await Deno.readFile(new URL("../../weights/blazeface-back-256.onnx", import.meta.url)),
  { backend, threads: 1 },
);
const median = (v: number[]) => v.sort((a, b) => a - b)[v.length >> 1];
async function time(fn: () => Promise<unknown> | unknown): Promise<number> {
  await fn();
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    t.push(performance.now() - t0);
  }
  return median(t);
}
const img = (await decodeImage(await readSamplePhoto(SAMPLE_PHOTOS[0]))).pixels;
const win = planWindows(img.width, img.height)[0];
const x = windowInput(img, win, 256);
console.log(
  `backend ${backend}, 1 thread, median of ${reps}; host load ${
    Deno.loadavg().map((v) => v.toFixed(1)).join(" ")
  }`,
);
console.log(
  `window resample (1920 px image → 256²): ${
    (await time(() => windowInput(img, win, 256, x))).toFixed(1)
  } ms`,
);
console.log(
  `one model run + decode of the heads: ${(await time(() => det.runWindow(img, win, 0.5, x))).toFixed(1)} ms`,
);
console.log("What the API runs (open → DCT-scaled decode → windows), per photo:");
console.log(
  "| photo | open (header + entropy) ms | largest face: faces, ms | all faces ≥ 40 px: faces, windows, ms |",
);
console.log("|---|---|---|---|");
for (const name of SAMPLE_PHOTOS) {
  const bytes = await readSamplePhoto(name);
  const src = await openImage(bytes);
  const q = await findFaces(det, src), f = await findFaces(det, src, { all: true });
  const to = await time(() => openImage(bytes));
  const tq = await time(() => findFaces(det, src)), tf = await time(() => findFaces(det, src, { all: true }));
  console.log(
    `| ${name} | ${to.toFixed(0)} | ${q.faces.length}, ${tq.toFixed(0)} | ${f.faces.length}, ${f.windows}, ${
      tf.toFixed(0)
    } |`,
  );
}
await det.dispose();
