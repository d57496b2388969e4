/**
 * Face detector latency on the face-api demo photos (1920 px group photos): one model run, the
 * whole-image pass (maxLevel 0) and the full pyramid down to 40 px faces, per backend.
 *
 *   deno run -A --node-modules-dir=auto tools/cli/bench_detect.ts [--backend wasm|native] [--reps 3]
 */
import { parseArgs } from "node:util";
import { FaceDetector, planWindows, windowInput } from "../../runtime/src/face/detect.ts";
import { decodeImage } from "../../runtime/src/image/mod.ts";
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
console.log("| photo | faces (whole image) | ms | faces (pyramid, 40 px) | windows | ms |");
console.log("|---|---|---|---|---|---|");
for (const name of SAMPLE_PHOTOS) {
  const im = (await decodeImage(await readSamplePhoto(name))).pixels;
  const q = await det.detect(im, { maxLevel: 0 }), f = await det.detect(im);
  const tq = await time(() => det.detect(im, { maxLevel: 0 })), tf = await time(() => det.detect(im));
  console.log(
    `| ${name} | ${q.faces.length} | ${tq.toFixed(0)} | ${f.faces.length} | ${f.windows} | ${
      tf.toFixed(0)
    } |`,
  );
}
await det.dispose();
