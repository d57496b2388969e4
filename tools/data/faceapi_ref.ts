/**
 * face-api itself as the reference for the imported recogniser (test/bench only: a tools-side
 * dependency). Its `node-wasm` entry runs in Deno on the tfjs wasm backend without tfjs-node.
 */
import * as faceapi from "@vladmandic/face-api/dist/face-api.node-wasm.js";
import * as tf from "@tensorflow/tfjs";
import { setThreadsCount, setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { decode as jpegDecode } from "jpeg-js";
import { importTfjsWeights } from "../../runtime/src/convert.ts";
import { bundleFromConversion } from "../../runtime/src/deploy_model.ts";
import { foldStateDict } from "../../runtime/src/fold.ts";
import type { BundleDType } from "../../runtime/src/io/bundle.ts";
import { readTfjsWeightsFile } from "../../runtime/src/io/files.ts";

// face-api's node-wasm entry requires the same @tensorflow/tfjs package, so one engine serves both.
let ready: Promise<void> | null = null;

/** The folder holding face-api's model files (manifests + shards) in node_modules. */
export function faceApiModelDir(): string {
  const entry = new URL(import.meta.resolve("@vladmandic/face-api/dist/face-api.node-wasm.js")).pathname;
  return entry.replace(/dist\/[^/]*$/, "model");
}

/** face-api's recogniser manifest path. */
export function faceApiRecognitionManifest(): string {
  return `${faceApiModelDir()}/face_recognition_model-weights_manifest.json`;
}

/** Initialise tfjs wasm (1 thread unless set) and load face-api's recognition + detection nets once. */
export function loadFaceApi(): Promise<void> {
  ready ??= (async () => {
    const entry = import.meta.resolve("@tensorflow/tfjs-backend-wasm");
    setWasmPaths(entry.slice(0, entry.lastIndexOf("/") + 1));
    setThreadsCount(1); // the same single thread the kit's ORT wasm numbers use
    if (!(await tf.setBackend("wasm"))) throw new Error("tfjs wasm backend did not initialise");
    await tf.ready();
    await faceapi.nets.faceRecognitionNet.loadFromDisk(faceApiModelDir());
    await faceapi.nets.ssdMobilenetv1.loadFromDisk(faceApiModelDir());
  })();
  return ready;
}

/** NCHW uint8 batch → list of HWC int32 tensors, the input face-api takes. */
function toHwc(pixels: Uint8Array, n: number, size: number) {
  const plane = size * size, out = [];
  for (let i = 0; i < n; i++) {
    const hwc = new Int32Array(3 * plane);
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < plane; p++) hwc[p * 3 + c] = pixels[(i * 3 + c) * plane + p];
    }
    out.push(tf.tensor3d(hwc, [size, size, 3], "int32"));
  }
  return out;
}

/** face-api's `computeFaceDescriptor` on each 150×150 crop of an NCHW uint8 batch. */
export async function faceApiDescriptors(pixels: Uint8Array, n: number): Promise<Float32Array[]> {
  await loadFaceApi();
  const xs = toHwc(pixels, n, 150);
  try {
    const d = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(
      (xs.length === 1 ? xs[0] : xs) as never,
    );
    return Array.isArray(d) ? d : [d];
  } finally {
    for (const x of xs) x.dispose();
  }
}

/** Real group photos shipped in face-api's demo folder (sample1-6.jpg). */
export function faceApiSamplePhotos(): string[] {
  const dir = faceApiModelDir().replace(/model$/, "demo");
  return [1, 2, 3, 4, 5, 6].map((i) => `${dir}/sample${i}.jpg`);
}

/**
 * Faces of a JPEG found by face-api's SSD MobileNet v1 (score ≥ `minScore`), each cut as the square
 * around its box and resized (tfjs bilinear) to `size`×`size`, rounded to uint8 NCHW.
 */
export async function faceApiCrops(
  jpeg: Uint8Array,
  size = 150,
  minScore = 0.5,
): Promise<{ pixels: Uint8Array; n: number }> {
  await loadFaceApi();
  const img = jpegDecode(jpeg, { useTArray: true, formatAsRGBA: false });
  const x = tf.tensor3d(img.data, [img.height, img.width, 3], "int32");
  try {
    const dets = await faceapi.detectAllFaces(
      x as never,
      new faceapi.SsdMobilenetv1Options({ minConfidence: minScore }),
    );
    const boxes = dets.map((d) => {
      const b = d.box, s = Math.max(b.width, b.height), cx = b.x + b.width / 2, cy = b.y + b.height / 2;
      return [
        (cy - s / 2) / img.height,
        (cx - s / 2) / img.width,
        (cy + s / 2) / img.height,
        (cx + s / 2) / img.width,
      ];
    });
    if (!boxes.length) return { pixels: new Uint8Array(0), n: 0 };
    const crops = tf.tidy(() => {
      const r = tf.image.cropAndResize(
        tf.expandDims(tf.cast(x, "float32")) as tf.Tensor4D,
        boxes,
        boxes.map(() => 0),
        [size, size],
        "bilinear",
      );
      return tf.transpose(tf.clipByValue(tf.round(r), 0, 255), [0, 3, 1, 2]);
    });
    const pixels = Uint8Array.from(await crops.data());
    crops.dispose();
    return { pixels, n: boxes.length };
  } finally {
    x.dispose();
  }
}

/** face-api's recogniser converted by the kit into a bundle of `dtype` (in memory, no fold check). */
export async function faceApiBundle(dtype: BundleDType): Promise<Uint8Array> {
  const imp = importTfjsWeights(await readTfjsWeightsFile(faceApiRecognitionManifest()));
  const deploy = foldStateDict(imp.desc, imp.stateDict);
  return bundleFromConversion({ desc: imp.desc, deploy }, dtype, JSON.parse(imp.metadata.repmlp_edge_meta));
}

/** Every face face-api's detector finds in its six demo photos, as 150×150 uint8 NCHW crops. */
export async function faceApiSampleCrops(): Promise<{ pixels: Uint8Array; n: number; perPhoto: number[] }> {
  const parts: Uint8Array[] = [], perPhoto: number[] = [];
  for (const p of faceApiSamplePhotos()) {
    const c = await faceApiCrops(await Deno.readFile(p));
    parts.push(c.pixels);
    perPhoto.push(c.n);
  }
  const pixels = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) pixels.set(p, o), o += p.length;
  return { pixels, n: perPhoto.reduce((a, b) => a + b, 0), perPhoto };
}
