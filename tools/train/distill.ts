/**
 * Embedding distillation: a kit face model (student, tfjs) learns to reproduce a teacher bundle's
 * L2-normalised embedding (run once per face on the kit's ORT session) from unlabelled face
 * photos, with a cosine loss. Each face is stored with its mirror image as a second sample with the
 * teacher's embedding of the mirror, so flips are an augmentation with an exact target; random
 * shifts and brightness/contrast jitter are applied on top (their targets are the unshifted ones:
 * the student is taught the teacher's embedding of the clean face).
 */
import * as tf from "@tensorflow/tfjs";
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import type { StateDict } from "../../runtime/src/tensor.ts";
import { type AlignMode, type EmbedModel, type FaceFinder } from "../eval/embed.ts";
import type { ImageSet } from "../data/fashion_mnist.ts";
import { cropPixels, normalizePixels, openImage, type Point } from "../../runtime/src/image/mod.ts";
import { makeBatch } from "../data/augment.ts";
import type { TrainGraph } from "./tfjs_graph.ts";
import { predictBatch } from "./trainer.ts";

/** Faces cut from a folder, at the student's and the teacher's input sizes, and where they came from. */
export interface FaceCrops {
  /** (N, C, H, W) uint8 at the student size; `labels` = index of the source file. */
  student: ImageSet;
  /** (N, C, Ht, Wt) uint8 at the teacher size. */
  teacher: Uint8Array;
  teacherShape: [number, number, number];
  files: string[];
  /** Files in which the detector found no face (skipped). */
  skipped: string[];
}

const IMG = /\.(png|jpe?g)$/i;

/** Every .png/.jpg under `dir` (recursive, sorted). */
export async function listImages(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      if (e.name.startsWith(".")) continue;
      if (e.isDirectory) await walk(`${d}/${e.name}`);
      else if (e.isFile && IMG.test(e.name)) out.push(`${d}/${e.name}`);
    }
  };
  try {
    await walk(dir);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new InvalidArgumentError(`image folder '${dir}' does not exist`);
    }
    throw e;
  }
  return out.sort();
}

/**
 * Cut faces out of every image: with `detect`, every face the finder finds (score ≥ its
 * threshold) is aligned on its landmarks — once at each model's size and on each model's template
 * (default ArcFace's) from the same landmarks; with `none`, each file is one face crop, resized.
 */
export async function collectFaces(
  files: string[],
  student: [number, number, number],
  teacher: [number, number, number],
  align: AlignMode,
  detector?: FaceFinder,
  onFile?: (done: number) => void,
  templates: { student?: readonly Point[]; teacher?: readonly Point[] } = {},
): Promise<FaceCrops> {
  const [C, H, W] = student, [Ct, Ht, Wt] = teacher;
  if ((C !== 1 && C !== 3) || (Ct !== 1 && Ct !== 3)) {
    throw new InvalidArgumentError("models must take 1 or 3 channels");
  }
  const s: Uint8Array[] = [], t: Uint8Array[] = [], origin: number[] = [], skipped: string[] = [];
  for (const [k, f] of files.entries()) {
    const src = await openImage(await Deno.readFile(f));
    if (align === "none") {
      s.push(await cropPixels(src, { input: student }));
      t.push(await cropPixels(src, { input: teacher }));
      origin.push(k);
    } else {
      if (!detector) throw new InvalidArgumentError("--align detect needs a face detector");
      const faces = await detector(src);
      if (!faces.length) skipped.push(f);
      for (const face of faces) {
        s.push(
          await cropPixels(src, { input: student, landmarks: face.landmarks, template: templates.student }),
        );
        t.push(
          await cropPixels(src, { input: teacher, landmarks: face.landmarks, template: templates.teacher }),
        );
        origin.push(k);
      }
    }
    onFile?.(k + 1);
  }
  const n = s.length;
  const images = new Uint8Array(n * C * H * W), tImages = new Uint8Array(n * Ct * Ht * Wt);
  s.forEach((a, i) => images.set(a, i * C * H * W));
  t.forEach((a, i) => tImages.set(a, i * Ct * Ht * Wt));
  return {
    student: { images, labels: Int32Array.from(origin), n, c: C, h: H, w: W, classes: files },
    teacher: tImages,
    teacherShape: teacher,
    files,
    skipped,
  };
}

/** Concatenate two {@link collectFaces} results (source indices of `b` follow those of `a`). */
export function concatCrops(a: FaceCrops, b: FaceCrops): FaceCrops {
  const cat = (x: Uint8Array, y: Uint8Array) => {
    const o = new Uint8Array(x.length + y.length);
    o.set(x), o.set(y, x.length);
    return o;
  };
  const files = [...a.files, ...b.files];
  const labels = Int32Array.from([
    ...a.student.labels,
    ...Array.from(b.student.labels, (l) => l + a.files.length),
  ]);
  return {
    student: {
      ...a.student,
      images: cat(a.student.images, b.student.images),
      labels,
      n: a.student.n + b.student.n,
      classes: files,
    },
    teacher: cat(a.teacher, b.teacher),
    teacherShape: a.teacherShape,
    files,
    skipped: [...a.skipped, ...b.skipped],
  };
}

/** Mirror (N, C, H, W) uint8 images left–right. */
export function mirror(x: Uint8Array, n: number, c: number, h: number, w: number): Uint8Array {
  const out = new Uint8Array(x.length);
  for (let i = 0; i < n * c * h; i++) {
    const o = i * w;
    for (let j = 0; j < w; j++) out[o + j] = x[o + w - 1 - j];
  }
  return out;
}

/** The teacher's L2-normalised embeddings of uint8 crops (N × dim). */
export async function teacherEmbeddings(
  model: EmbedModel,
  crops: Uint8Array,
  n: number,
  batch = 32,
  onBatch?: (done: number) => void,
): Promise<{ emb: Float32Array; dim: number }> {
  const [C, H, W] = model.pre.input, plane = C * H * W;
  let emb = new Float32Array(0), dim = 0;
  for (let s = 0; s < n; s += batch) {
    const b = Math.min(batch, n - s);
    const x = new Float32Array(b * plane);
    normalizePixels(crops.subarray(s * plane, (s + b) * plane), C, H * W, model.pre.mean, model.pre.std, x);
    const y = await model.run(x, b);
    if (!dim) dim = y.length / b, emb = new Float32Array(n * dim);
    for (let i = 0; i < b; i++) {
      let q = 0;
      for (let d = 0; d < dim; d++) q += y[i * dim + d] ** 2;
      const k = 1 / Math.sqrt(Math.max(q, 1e-24));
      for (let d = 0; d < dim; d++) emb[(s + i) * dim + d] = y[i * dim + d] * k;
    }
    onBatch?.(s + b);
  }
  return { emb, dim };
}

/** Hold out about `frac` of the source files (at least one when there are two or more). */
export function heldOutFiles(nFiles: number, frac: number, rnd: () => number): Set<number> {
  const k = nFiles < 2 ? 0 : Math.max(1, Math.round(nFiles * frac));
  const idx = Array.from({ length: nFiles }, (_, i) => i);
  for (let i = nFiles - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return new Set(idx.slice(0, k));
}

/**
 * 1 − cosine(student, target), averaged; the student output is re-normalised for safety. With
 * `center` (the mean teacher embedding) both sides are centred first, so the loss measures the
 * part of the embedding that tells faces apart, not the component every face shares.
 */
export function cosineLoss(out: tf.Tensor, target: tf.Tensor, center?: tf.Tensor): tf.Scalar {
  const unit = (x: tf.Tensor) => tf.div(x, tf.maximum(tf.norm(x, 2, 1, true), 1e-12));
  let o = unit(out), t = target;
  if (center) o = unit(tf.sub(o, center)), t = unit(tf.sub(t, center));
  return tf.mean(tf.sub(1, tf.sum(tf.mul(o, t), 1))) as tf.Scalar;
}

/** Mean of the (unit) targets of a set: the common component of the teacher's embeddings. */
export function meanTarget(d: DistillSet): Float32Array {
  const m = new Float32Array(d.dim);
  for (let i = 0; i < d.set.n; i++) {
    for (let k = 0; k < d.dim; k++) m[k] += d.targets[i * d.dim + k] / d.set.n;
  }
  return m;
}

/** A distillation training set: crops (original + mirrored) with their teacher targets. */
export interface DistillSet {
  set: ImageSet;
  targets: Float32Array;
  dim: number;
}

/** Select samples `idx` of `crops` with targets, adding mirrored copies with the mirrored targets. */
export function withMirrors(
  crops: ImageSet,
  emb: Float32Array,
  embFlip: Float32Array,
  dim: number,
  idx: number[],
  mirrors = true,
): DistillSet {
  const { c, h, w } = crops, plane = c * h * w, m = mirrors ? 2 : 1;
  const n = idx.length * m;
  const images = new Uint8Array(n * plane), targets = new Float32Array(n * dim), labels = new Int32Array(n);
  const flipped = mirrors ? mirror(crops.images, crops.n, c, h, w) : null;
  idx.forEach((s, i) => {
    images.set(crops.images.subarray(s * plane, (s + 1) * plane), i * m * plane);
    targets.set(emb.subarray(s * dim, (s + 1) * dim), i * m * dim);
    labels[i * m] = crops.labels[s];
    if (flipped) {
      images.set(flipped.subarray(s * plane, (s + 1) * plane), (i * m + 1) * plane);
      targets.set(embFlip.subarray(s * dim, (s + 1) * dim), (i * m + 1) * dim);
      labels[i * m + 1] = crops.labels[s];
    }
  });
  return { set: { images, labels, n, c, h, w, classes: crops.classes }, targets, dim };
}

/** Options of {@link distillBatch}. */
export interface DistillAug {
  pad: number;
  mean: number[];
  std: number[];
  /** Brightness/contrast jitter amplitude (0 = none). */
  jitter: number;
}

/** Assemble an augmented batch and its targets. */
export function distillBatch(d: DistillSet, idx: ArrayLike<number>, o: DistillAug, rnd: () => number) {
  const { x } = makeBatch(d.set, idx, { pad: o.pad, flip: false, mean: o.mean, std: o.std }, rnd);
  const B = idx.length, per = x.length / B;
  if (o.jitter) {
    for (let b = 0; b < B; b++) {
      const a = 1 + o.jitter * (2 * rnd() - 1), c = o.jitter * (2 * rnd() - 1);
      for (let i = b * per; i < (b + 1) * per; i++) x[i] = x[i] * a + c;
    }
  }
  const t = new Float32Array(B * d.dim);
  for (let b = 0; b < B; b++) t.set(d.targets.subarray(idx[b] * d.dim, (idx[b] + 1) * d.dim), b * d.dim);
  return { x, t };
}

/** Student-vs-teacher cosine over a set (no augmentation): mean, min and the 10th percentile. */
export async function studentCosine(
  graph: TrainGraph,
  d: DistillSet,
  norm: { mean: number[]; std: number[] },
  batch = 64,
  center?: Float32Array,
): Promise<{ mean: number; min: number; p10: number; n: number; centred: number }> {
  const cos: number[] = [];
  let centred = 0;
  const idx = new Int32Array(batch);
  for (let s = 0; s < d.set.n; s += batch) {
    const B = Math.min(batch, d.set.n - s);
    for (let i = 0; i < B; i++) idx[i] = s + i;
    const { x } = makeBatch(d.set, idx.subarray(0, B), { pad: 0, flip: false, ...norm }, null);
    const y = await predictBatch(graph, x, [B, d.set.c, d.set.h, d.set.w]);
    for (let i = 0; i < B; i++) {
      let dot = 0, q = 0;
      for (let k = 0; k < d.dim; k++) {
        dot += y[i * d.dim + k] * d.targets[(s + i) * d.dim + k];
        q += y[i * d.dim + k] ** 2;
      }
      const norm = Math.sqrt(Math.max(q, 1e-24));
      cos.push(dot / norm);
      if (center) {
        let cd = 0, cq = 0, ct = 0;
        for (let k = 0; k < d.dim; k++) {
          const a = y[i * d.dim + k] / norm - center[k], b = d.targets[(s + i) * d.dim + k] - center[k];
          cd += a * b, cq += a * a, ct += b * b;
        }
        centred += cd / Math.sqrt(Math.max(cq * ct, 1e-24));
      }
    }
  }
  const sorted = [...cos].sort((a, b) => a - b);
  return {
    mean: cos.reduce((a, b) => a + b, 0) / Math.max(1, cos.length),
    min: sorted[0] ?? NaN,
    p10: sorted[Math.floor(sorted.length * 0.1)] ?? NaN,
    n: cos.length,
    centred: center ? centred / Math.max(1, cos.length) : NaN,
  };
}

/**
 * What a constant student scores: mean cosine between the normalised mean of the training
 * targets and each held-out target. Teachers whose embeddings share a large common component
 * (face-api's: any two faces ≈ 0.9) make raw cosine look good; this is the number to beat.
 */
export function constantBaseline(train: DistillSet, test: DistillSet): number {
  const m = new Float32Array(train.dim);
  for (let i = 0; i < train.set.n; i++) {
    for (let d = 0; d < train.dim; d++) m[d] += train.targets[i * train.dim + d];
  }
  const q = Math.sqrt(m.reduce((a, v) => a + v * v, 0)) || 1;
  let s = 0;
  for (let i = 0; i < test.set.n; i++) {
    let dot = 0;
    for (let d = 0; d < test.dim; d++) dot += m[d] / q * test.targets[i * test.dim + d];
    s += dot;
  }
  return s / Math.max(1, test.set.n);
}

/** The cache of `collectFaces` + teacher embeddings, so resume never recomputes the teacher. */
export function cacheTensors(c: FaceCrops, emb: Float32Array, embFlip: Float32Array, dim: number): StateDict {
  const { n, c: C, h, w } = c.student;
  return new Map([
    ["student", { dtype: "uint8", shape: [n, C, h, w], data: c.student.images }],
    ["source", { dtype: "int32", shape: [n], data: c.student.labels }],
    ["teacher_emb", { dtype: "float32", shape: [n, dim], data: emb }],
    ["teacher_emb_mirror", { dtype: "float32", shape: [n, dim], data: embFlip }],
  ]);
}
