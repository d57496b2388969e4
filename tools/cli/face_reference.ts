/**
 * Write the reference face boxes of the face-api demo photos with an independent detector:
 * face-api's SSD MobileNet v1 (tfjs, CPU backend) on the photos decoded by the kit's decoder.
 *
 *   deno run -A --node-modules-dir=auto tools/cli/face_reference.ts [out.json]
 */
import * as faceapi from "@vladmandic/face-api/dist/face-api.node-wasm.js";
import { decodeImage } from "../../runtime/src/image/mod.ts";
import { readSamplePhoto, type RefSet, SAMPLE_PHOTOS } from "../data/face_photos.ts";

const out = Deno.args[0] ?? new URL("../tests/fixtures/face_api_ssd_boxes.json", import.meta.url).pathname;
const MIN_CONFIDENCE = 0.5;
const modelDir =
  new URL(".", import.meta.resolve("@vladmandic/face-api/model/ssd_mobilenetv1_model.bin")).pathname;

// deno-lint-ignore no-explicit-any
const api = faceapi as any;
await api.tf.setBackend("wasm");
await api.tf.ready();
const manifest = JSON.parse(
  await Deno.readTextFile(`${modelDir}ssd_mobilenetv1_model-weights_manifest.json`),
);
await api.nets.ssdMobilenetv1.loadFromWeightMap(
  await api.tf.io.decodeWeights(
    await Deno.readFile(`${modelDir}ssd_mobilenetv1_model.bin`),
    manifest.flatMap((g: { weights: unknown[] }) => g.weights),
  ),
);
const set: RefSet = {
  provenance: `@vladmandic/face-api@1.7.15 SsdMobilenetv1 (model/ssd_mobilenetv1_model.bin, MIT), ` +
    `tfjs wasm backend, minConfidence ${MIN_CONFIDENCE}, default maxResults; photos decoded upright by ` +
    `the kit's image pipeline; written by tools/cli/face_reference.ts`,
  photos: {},
};
for (const name of SAMPLE_PHOTOS) {
  const img = (await decodeImage(await readSamplePhoto(name))).pixels;
  const t = api.tf.tensor3d(img.data, [img.height, img.width, 3], "int32");
  const t0 = performance.now();
  const dets = await api.detectAllFaces(t, new api.SsdMobilenetv1Options({ minConfidence: MIN_CONFIDENCE }));
  t.dispose();
  const faces = dets.map((
    d: { box: { x: number; y: number; width: number; height: number }; score: number },
  ) => ({
    x: +d.box.x.toFixed(1),
    y: +d.box.y.toFixed(1),
    width: +d.box.width.toFixed(1),
    height: +d.box.height.toFixed(1),
    score: +d.score.toFixed(3),
  }));
  set.photos[name] = { width: img.width, height: img.height, faces };
  console.log(
    `${name} ${img.width}×${img.height}: ${faces.length} faces (${(performance.now() - t0).toFixed(0)} ms)`,
  );
}
await Deno.writeTextFile(out, JSON.stringify(set, null, 2) + "\n");
console.log(`wrote ${out}`);
