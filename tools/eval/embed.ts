/**
 * Image files → face crops → L2-normalised embeddings with a bundle on the kit's ORT session.
 * Crops are aligned with the face detector + 5-point similarity warp (the server's alignment), or
 * taken as they are (`none`: the files are already face crops) and resized to the model input.
 */
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import { loadBundle } from "../../runtime/src/deploy_model.ts";
import { type Backend, createSession } from "../../runtime/src/backends/mod.ts";
import { parsePreprocess, type PreprocessMeta } from "../../runtime/src/preprocess.ts";
import { f32 } from "../../runtime/src/tensor.ts";
import { alignFace } from "../../runtime/src/server/align.ts";
import {
  centerCropResize,
  decodeImage,
  normalize,
  type Planar,
  resize,
  toPlanar,
} from "../../runtime/src/server/image.ts";
import type { DetectedFace, FaceDetector } from "../data/faceapi_detect.ts";

/** How faces are cut from the files. */
export type AlignMode = "detect" | "none";

/** A face-embedding model ready to run on float NCHW batches. */
export interface EmbedModel {
  pre: PreprocessMeta;
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
  return {
    pre,
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

/** Decode a file and cut the face crop (planar, 0..255) at `H × W` with `C` channels. */
export async function faceCrop(
  path: string,
  C: 1 | 3,
  H: number,
  W: number,
  align: AlignMode,
  detector?: FaceDetector,
): Promise<{ crop: Planar; detected: boolean }> {
  const img = decodeImage(await Deno.readFile(path));
  if (align === "none") {
    return {
      crop: resize(toPlanar(img, C), { x: 0, y: 0, w: img.width, h: img.height }, W, H),
      detected: true,
    };
  }
  if (!detector) throw new InvalidArgumentError("--align detect needs a face detector");
  const rgb = toPlanar(img, 3);
  const face = centralFace(await detector(rgb), img.width, img.height);
  const src = C === 3 ? rgb : toPlanar(img, 1);
  // No face found: fall back to a centre crop (counted and reported by the caller).
  if (!face) return { crop: centerCropResize(src, W, H), detected: false };
  return { crop: alignFace(src, face.landmarks, W, H), detected: true };
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
      const { crop, detected } = await faceCrop(paths[s + i], C, H, W, opts.align, opts.detector);
      if (!detected) undetected.push(paths[s + i]);
      x.set(normalize(crop, model.pre.mean, model.pre.std), i * plane);
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
