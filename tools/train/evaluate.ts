/**
 * Evaluation: top-1 for classifiers; face verification (ROC over all pairs of held-out
 * identities, TAR at fixed FAR, best accuracy and its threshold) for embedding models.
 */
import type { ImageSet } from "../data/fashion_mnist.ts";
import { type BatchOptions, makeBatch } from "../data/augment.ts";

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

/** Verification metrics over every pair of embeddings. */
export interface Verification {
  pairs: { positive: number; negative: number };
  auc: number;
  /** True-accept rate at the threshold whose false-accept rate ≤ FAR. */
  tarAtFar: Record<string, number>;
  /** Thresholds (cosine similarity) achieving those FARs. */
  thresholdAtFar: Record<string, number>;
  bestAccuracy: number;
  /** Cosine-similarity threshold of the best accuracy ("same person" when sim ≥ threshold). */
  threshold: number;
  /** ROC sampled at ~100 points: [FAR, TAR]. */
  roc: [number, number][];
}

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
  const P = pos.length, Q = neg.length;
  // Sweep thresholds from high to low over the merged sorted scores.
  const all = [...pos.map((s) => [s, 1] as const), ...neg.map((s) => [s, 0] as const)].sort((a, b) =>
    b[0] - a[0]
  );
  let tp = 0, fp = 0, auc = 0, prevFar = 0, prevTar = 0;
  let bestAcc = Q / (P + Q), bestThr = all.length ? all[0][0] + 1e-6 : 1;
  const fars = [1e-3, 1e-2, 1e-1];
  const tarAt: Record<string, number> = {}, thrAt: Record<string, number> = {};
  for (const f of fars) {
    tarAt[String(f)] = 0;
    thrAt[String(f)] = all.length ? all[0][0] + 1e-6 : 1;
  }
  const roc: [number, number][] = [[0, 0]];
  for (let i = 0; i < all.length; i++) {
    if (all[i][1]) tp++;
    else fp++;
    // Only evaluate at the end of a run of equal scores.
    if (i + 1 < all.length && all[i + 1][0] === all[i][0]) continue;
    const tar = P ? tp / P : 0, far = Q ? fp / Q : 0;
    auc += (far - prevFar) * (tar + prevTar) / 2;
    prevFar = far;
    prevTar = tar;
    for (const f of fars) {
      if (far <= f && tar >= tarAt[String(f)]) {
        tarAt[String(f)] = tar;
        thrAt[String(f)] = all[i][0];
      }
    }
    const acc = (tp + (Q - fp)) / (P + Q);
    if (acc > bestAcc) {
      bestAcc = acc;
      bestThr = i + 1 < all.length ? (all[i][0] + all[i + 1][0]) / 2 : all[i][0] - 1e-6;
    }
    if (roc.length < 2 || far - roc[roc.length - 1][0] >= 0.01 || tar - roc[roc.length - 1][1] >= 0.01) {
      roc.push([far, tar]);
    }
  }
  roc.push([1, 1]);
  return {
    pairs: { positive: P, negative: Q },
    auc,
    tarAtFar: tarAt,
    thresholdAtFar: thrAt,
    bestAccuracy: bestAcc,
    threshold: bestThr,
    roc,
  };
}
