/**
 * Alignment quality as a number: how much a real recogniser's embedding of one face moves when the
 * photo is shifted, scaled or slightly rotated, with detector landmarks + 5-point alignment vs a
 * plain crop of the detector's box. Recogniser: face-api's dlib-weights ResNet (128-d, Euclidean,
 * same-person threshold 0.6), tfjs wasm. Photos: face-api's demo photos.
 *
 *   deno run -A --node-modules-dir=auto tools/cli/face_align_stability.ts
 */
import * as faceapi from "@vladmandic/face-api/dist/face-api.node-wasm.js";
import { type Face, FaceDetector } from "../../runtime/src/face/detect.ts";
import {
  alignFace,
  decodeImage,
  type Planar,
  type Point,
  resize,
  type RgbImage,
  toPlanar,
  warpAffine,
} from "../../runtime/src/image/mod.ts";
import { readSamplePhoto, SAMPLE_PHOTOS } from "../data/face_photos.ts";

// deno-lint-ignore no-explicit-any
const api = faceapi as any;
await api.tf.setBackend("wasm");
await api.tf.ready();
const modelUrl = import.meta.resolve("@vladmandic/face-api/model/face_recognition_model.bin");
const manifest = JSON.parse(
  await Deno.readTextFile(new URL(modelUrl.replace(/\.bin$/, "-weights_manifest.json"))),
);
await api.nets.faceRecognitionNet.loadFromWeightMap(
  api.tf.io.decodeWeights(
    await Deno.readFile(new URL(modelUrl)),
    manifest.flatMap((g: { weights: unknown[] }) => g.weights),
  ),
);
const det = await FaceDetector.create(
  await Deno.readFile(new URL("../../weights/blazeface-back-256.onnx", import.meta.url)),
);
const CROP = 150;

async function describe(p: Planar): Promise<Float32Array> {
  const hwc = new Float32Array(CROP * CROP * 3);
  for (let i = 0; i < CROP * CROP; i++) {
    for (let c = 0; c < 3; c++) hwc[i * 3 + c] = p.data[c * CROP * CROP + i];
  }
  const t = api.tf.tensor3d(hwc, [CROP, CROP, 3]);
  const d = await api.nets.faceRecognitionNet.computeFaceDescriptor(t);
  t.dispose();
  return d as Float32Array;
}

function toRgb(p: Planar): RgbImage {
  const n = p.w * p.h, data = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) data[i * 3 + c] = Math.max(0, Math.min(255, Math.round(p.data[c * n + i])));
  }
  return { width: p.w, height: p.h, data };
}

/** The photo under a similarity transform (output px = A·input px), and A. */
function transform(
  p: Planar,
  scale: number,
  deg: number,
  dx: number,
  dy: number,
): { img: Planar; fwd: number[] } {
  const r = (deg * Math.PI) / 180, a = scale * Math.cos(r), b = scale * Math.sin(r);
  const cx = p.w / 2, cy = p.h / 2, W = Math.round(p.w * scale), H = Math.round(p.h * scale);
  // out = A·(in - c) + c' + d
  const fwd = [a, -b, W / 2 + dx - (a * cx - b * cy), b, a, H / 2 + dy - (b * cx + a * cy)];
  const det = a * a + b * b;
  const inv = [a / det, b / det, 0, -b / det, a / det, 0];
  inv[2] = -(inv[0] * fwd[2] + inv[1] * fwd[5]);
  inv[5] = -(inv[3] * fwd[2] + inv[4] * fwd[5]);
  let src = p;
  if (scale < 0.8) {
    src = resize(
      toRgb(p),
      { x: 0, y: 0, w: p.w, h: p.h },
      Math.round(p.w * scale),
      Math.round(p.h * scale),
      3,
    );
  }
  const k = src.w / p.w;
  const invS = [inv[0] * k, inv[1] * k, inv[2] * k, inv[3] * k, inv[4] * k, inv[5] * k];
  return { img: warpAffine(src, invS, W, H), fwd };
}

const apply = (m: number[], [x, y]: Point): Point => [m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]];
const dist = (a: Float32Array, b: Float32Array) => Math.hypot(...a.map((v, i) => v - b[i]));
const boxCrop = (p: RgbImage, f: Face) => {
  const s = Math.max(f.box.width, f.box.height),
    cx = f.box.x + f.box.width / 2,
    cy = f.box.y + f.box.height / 2;
  return resize(p, { x: cx - s / 2, y: cy - s / 2, w: s, h: s }, CROP, CROP, 3);
};

const TRANSFORMS: [string, number, number, number, number][] = [
  ["shift 37,23 px", 1, 0, 37, 23],
  ["scale 0.7", 0.7, 0, 0, 0],
  ["scale 1.3", 1.3, 0, 0, 0],
  ["rotate +8°", 1, 8, 0, 0],
  ["rotate -12°", 1, -12, 0, 0],
];
const REFINE = Deno.args.includes("--refine");
const rows = new Map<string, { aligned: number[]; box: number[] }>();
const others: number[] = [];
const all: Float32Array[] = [];
for (const name of SAMPLE_PHOTOS) {
  const img = (await decodeImage(await readSamplePhoto(name))).pixels;
  const p = toPlanar(img, 3);
  let base = (await det.detect(img, { minFace: 100 })).faces;
  if (REFINE) base = await Promise.all(base.map((f) => det.refine(img, f)));
  const d0 = await Promise.all(base.map((f) => describe(alignFace(img, f.landmarks, CROP, CROP, 3))));
  const b0 = await Promise.all(base.map((f) => describe(boxCrop(img, f))));
  all.push(...d0);
  for (const [label, s, deg, dx, dy] of TRANSFORMS) {
    const t = transform(p, s, deg, dx, dy);
    const timg = toRgb(t.img);
    let faces = (await det.detect(timg, { minFace: 100 * s })).faces;
    if (REFINE) faces = await Promise.all(faces.map((f) => det.refine(timg, f)));
    const row = rows.get(label) ?? { aligned: [], box: [] };
    for (let i = 0; i < base.length; i++) {
      // The same face: the transformed detection nearest to where the original's nose tip moved.
      const want = apply(t.fwd, base[i].landmarks[2]);
      const f = faces.reduce(
        (best: Face | null, g) =>
          !best || Math.hypot(g.landmarks[2][0] - want[0], g.landmarks[2][1] - want[1]) <
              Math.hypot(best.landmarks[2][0] - want[0], best.landmarks[2][1] - want[1])
            ? g
            : best,
        null,
      );
      if (!f || Math.hypot(f.landmarks[2][0] - want[0], f.landmarks[2][1] - want[1]) > 0.3 * f.box.width) {
        row.aligned.push(NaN), row.box.push(NaN);
        continue;
      }
      row.aligned.push(dist(d0[i], await describe(alignFace(timg, f.landmarks, CROP, CROP, 3))));
      row.box.push(dist(b0[i], await describe(boxCrop(timg, f))));
    }
    rows.set(label, row);
  }
}
for (let i = 0; i < all.length; i++) {
  for (let j = i + 1; j < all.length; j++) others.push(dist(all[i], all[j]));
}
const stat = (v: number[]) => {
  const ok = v.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  const mean = ok.reduce((a, b) => a + b, 0) / ok.length;
  return `mean ${mean.toFixed(3)} max ${ok[ok.length - 1].toFixed(3)} (n=${ok.length}${
    ok.length < v.length ? `, ${v.length - ok.length} not re-found` : ""
  })`;
};
console.log(`landmarks: ${REFINE ? "detector + refinement pass (FaceDetector.refine)" : "detector only"}`);
console.log(
  "Embedding distance of the same face, original photo vs transformed (face-api 128-d, Euclidean):",
);
console.log("| transform | 5-point alignment (detector landmarks) | box crop, no alignment |");
console.log("|---|---|---|");
for (const [label, r] of rows) console.log(`| ${label} | ${stat(r.aligned)} | ${stat(r.box)} |`);
console.log(
  `Different people (aligned, ${all.length} faces): ${stat(others)}; min ${
    Math.min(...others).toFixed(3)
  }; face-api same-person threshold 0.6`,
);
