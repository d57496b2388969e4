/**
 * Image files → face crops → L2-normalised embeddings with a bundle on the kit's ORT session.
 * Crops are aligned with the face detector + 5-point similarity warp (the server's alignment), or
 * taken as they are (`none`: the files are already face crops) and resized to the model input.
 */
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import { loadBundle } from "../../runtime/src/deploy_model.ts";
import { type Backend, createSession } from "../../runtime/src/backends/mod.ts";
import {
  cropPixels,
  type ImageSource,
  normalizePixels,
  openImage,
  parsePreprocess,
  type Point,
  type PreprocessMeta,
  toPlanar,
} from "../../runtime/src/image/mod.ts";
import { f32 } from "../../runtime/src/tensor.ts";
import type { DetectedFace, FaceDetector } from "../data/faceapi_detect.ts";

/** How faces are cut from the files. */
export type AlignMode = "detect" | "none";

/** A face-embedding model ready to run on float NCHW batches. */
export interface EmbedModel {
  pre: PreprocessMeta;
  /** The model's own 5-point alignment template (bundle meta `align.template`), as the server uses it. */
  template?: [number, number][];
  /** Normalised input batch (N, C, H, W) → (N × dim) raw outputs. */
  run(x: Float32Array, n: number): Promise<Float32Array>;
  /** e.g. "wasm (int8 bundle, fp32 graph)". */
  engine: string;
  dispose(): Promise<void>;
}

/** Open a face-embedding bundle on the kit's ORT session. */
export async function openEmbedModel(path: string, backend: Backend = "wasm"): Promise<EmbedModel> {
  const bundle = await loadBundle(await Deno.readFile(path));
  if (bundle.meta.task !== undefined && bundle.meta.task !== "face-embedding") {
    throw new InvalidArgumentError(`${path} is a '${bundle.meta.task}' model, not a face-embedding model`);
  }
  const pre = parsePreprocess(bundle.meta.preprocess);
  const s = await createSession(bundle, { backend });
  const [C, H, W] = pre.input;
  const template = (bundle.meta.align as { template?: [number, number][] } | undefined)?.template;
  return {
    pre,
    template,
    run: async (x, n) => (await s.run(f32([n, C, H, W], x))).data,
    engine: `${s.provider} (${bundle.dtype} bundle, ${s.precision} graph)`,
    dispose: () => s.dispose(),
  };
}

/** The detection nearest the image centre among the most confident ones (LFW photos centre their subject). */
export function centralFace(faces: DetectedFace[], w: number, h: number): DetectedFace | null {
  let best: DetectedFace | null = null, bestD = Infinity;
  for (const f of faces) {
    const d = Math.hypot(f.box.x + f.box.w / 2 - w / 2, f.box.y + f.box.h / 2 - h / 2) / Math.hypot(w, h);
    const cost = d - f.score; // prefer central, break near-ties by confidence
    if (cost < bestD) bestD = cost, best = f;
  }
  return best;
}

/**
 * Every face the detector finds in an opened image, in upright full-resolution pixels. The image is
 * decoded at the smallest DCT scale keeping a short side of 720 px (detectors work at ≤ 512).
 */
export async function findFaces(src: ImageSource, detector: FaceDetector): Promise<DetectedFace[]> {
  const d = await src.decode({ targetShortSide: 720 });
  const k = 1 / d.scale;
  return (await detector(toPlanar(d.pixels, 3))).map((f) => ({
    score: f.score,
    box: { x: (f.box.x + d.x) * k, y: (f.box.y + d.y) * k, w: f.box.w * k, h: f.box.h * k },
    landmarks: f.landmarks.map(([x, y]) => [(x + d.x) * k, (y + d.y) * k]),
  }));
}

/** A file's face crop as uint8 planar pixels at the model input `[C, H, W]` (the kit's image pipeline). */
export async function facePixels(
  path: string,
  input: readonly number[],
  align: AlignMode,
  detector?: FaceDetector,
  template?: readonly Point[],
): Promise<{ pixels: Uint8Array; detected: boolean }> {
  const src = await openImage(await Deno.readFile(path));
  if (align === "none") return { pixels: await cropPixels(src, { input }), detected: true };
  if (!detector) throw new InvalidArgumentError("--align detect needs a face detector");
  const face = centralFace(await findFaces(src, detector), src.width, src.height);
  // No face found: centre crop (counted and reported by the caller).
  return {
    pixels: await cropPixels(src, { input, landmarks: face?.landmarks, template }),
    detected: face !== null,
  };
}

/** Embed every file once; rows are L2-normalised. */
export async function embedFiles(
  paths: string[],
  model: EmbedModel,
  opts: { align: AlignMode; detector?: FaceDetector; batch?: number; onProgress?: (done: number) => void },
): Promise<{ emb: Float32Array; dim: number; undetected: string[] }> {
  const [C, H, W] = model.pre.input;
  if (C !== 1 && C !== 3) throw new InvalidArgumentError(`model input has ${C} channels`);
  const B = opts.batch ?? 32, plane = C * H * W;
  const undetected: string[] = [];
  let emb = new Float32Array(0), dim = 0;
  for (let s = 0; s < paths.length; s += B) {
    const n = Math.min(B, paths.length - s);
    const x = new Float32Array(n * plane);
    for (let i = 0; i < n; i++) {
      const { pixels, detected } = await facePixels(
        paths[s + i],
        model.pre.input,
        opts.align,
        opts.detector,
        model.template,
      );
      if (!detected) undetected.push(paths[s + i]);
      normalizePixels(
        pixels,
        C,
        H * W,
        model.pre.mean,
        model.pre.std,
        x.subarray(i * plane, (i + 1) * plane),
      );
    }
    const y = await model.run(x, n);
    if (!dim) {
      dim = y.length / n;
      emb = new Float32Array(paths.length * dim);
    }
    for (let i = 0; i < n; i++) {
      let q = 0;
      for (let d = 0; d < dim; d++) q += y[i * dim + d] ** 2;
      const k = 1 / Math.sqrt(Math.max(q, 1e-24));
      for (let d = 0; d < dim; d++) emb[(s + i) * dim + d] = y[i * dim + d] * k;
    }
    opts.onProgress?.(s + n);
  }
  return { emb, dim, undetected };
}
