/**
 * Evaluation: top-1 for classifiers; face verification (ROC over all pairs of held-out
 * identities, TAR at fixed FAR, best accuracy and its threshold) for embedding models.
 */
import type { ImageSet } from "../data/fashion_mnist.ts";
import { type BatchOptions, makeBatch } from "../data/augment.ts";
import { type RocMetrics, rocMetrics } from "../eval/protocol.ts";

/** Anything that maps a float NCHW batch to (N × out) floats. */
export type Predict = (x: Float32Array, shape: number[]) => Promise<Float32Array>;

/** Run `predict` over a whole set (no augmentation); returns (N × out) outputs. */
export async function predictSet(
  set: ImageSet,
  predict: Predict,
  norm: Pick<BatchOptions, "mean" | "std">,
  batch = 256,
  onBatch?: (done: number) => void,
): Promise<{ out: Float32Array; dim: number }> {
  let out: Float32Array | null = null, dim = 0;
  const idx = new Int32Array(batch);
  for (let s = 0; s < set.n; s += batch) {
    const B = Math.min(batch, set.n - s);
    for (let i = 0; i < B; i++) idx[i] = s + i;
    const { x } = makeBatch(set, idx.subarray(0, B), { pad: 0, flip: false, ...norm }, null);
    const y = await predict(x, [B, set.c, set.h, set.w]);
    if (!out) {
      dim = y.length / B;
      out = new Float32Array(set.n * dim);
    }
    out.set(y, s * dim);
    onBatch?.(s + B);
  }
  return { out: out ?? new Float32Array(0), dim };
}

/** Top-1 accuracy of logits (N × K) against labels. */
export function top1(logits: Float32Array, K: number, labels: Int32Array): number {
  let hit = 0;
  for (let n = 0; n < labels.length; n++) {
    let best = 0;
    for (let k = 1; k < K; k++) if (logits[n * K + k] > logits[n * K + best]) best = k;
    if (best === labels[n]) hit++;
  }
  return hit / labels.length;
}

/** Verification metrics over every pair of embeddings (see tools/eval/protocol.ts). */
export type Verification = RocMetrics;

/** Verification on L2-normalised embeddings (N × D) with identity labels: cosine similarity. */
export function verification(emb: Float32Array, D: number, labels: Int32Array): Verification {
  const N = labels.length;
  const pos: number[] = [], neg: number[] = [];
  for (let i = 0; i < N; i++) {
    for (let j = i + 1; j < N; j++) {
      let s = 0;
      for (let d = 0; d < D; d++) s += emb[i * D + d] * emb[j * D + d];
      (labels[i] === labels[j] ? pos : neg).push(s);
    }
  }
  return rocMetrics(pos, neg);
}
