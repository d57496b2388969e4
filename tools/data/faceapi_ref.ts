/**
 * face-api itself as the reference for the imported recogniser (test/bench only: a tools-side
 * dependency). Its `node-wasm` entry runs in Deno on the tfjs wasm backend without tfjs-node.
 */
import * as faceapi from "@vladmandic/face-api/dist/face-api.node-wasm.js";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";

const tf = faceapi.tf;
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
    const d = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(xs.length === 1 ? xs[0] : xs);
    return Array.isArray(d) ? d : [d];
  } finally {
    for (const x of xs) x.dispose();
  }
}

/** Time face-api descriptors for a batch: median ms per call over `reps` after one warm-up. */
export async function timeFaceApi(pixels: Uint8Array, n: number, reps: number): Promise<number> {
  await faceApiDescriptors(pixels, n);
  const ts: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await faceApiDescriptors(pixels, n);
    ts.push(performance.now() - t0);
  }
  return ts.sort((a, b) => a - b)[Math.floor(ts.length / 2)];
}
