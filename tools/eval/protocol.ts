/**
 * Verification maths on pair scores (higher = more alike): the ROC sweep (AUC, TAR at fixed FAR,
 * best accuracy) and the LFW "unrestricted" k-fold protocol (Huang et al. 2007): for each fold
 * the threshold that maximises accuracy on the other k − 1 folds is applied to that fold, and the
 * k accuracies are reported as mean ± standard deviation.
 */
import { InvalidArgumentError } from "../../runtime/src/errors.ts";

/** What a sweep over every threshold of a set of genuine and impostor scores gives. */
export interface RocMetrics {
  pairs: { positive: number; negative: number };
  /** Area under the ROC (ties count one half, as the Mann–Whitney statistic). */
  auc: number;
  /** Highest true-accept rate at a threshold whose false-accept rate is ≤ the key (e.g. "0.001"). */
  tarAtFar: Record<string, number>;
  /** The score threshold (accept when score ≥ it) of each of those. */
  thresholdAtFar: Record<string, number>;
  bestAccuracy: number;
  /** Midpoint threshold of the best accuracy ("same" when score ≥ threshold). */
  threshold: number;
  /** ROC sampled at ~100 points: [FAR, TAR]. */
  roc: [number, number][];
}

/** FARs at which TAR is reported. */
export const FARS = [1e-3, 1e-2, 1e-1] as const;

/** Sweep every distinct threshold of genuine (`pos`) and impostor (`neg`) scores. */
export function rocMetrics(pos: ArrayLike<number>, neg: ArrayLike<number>): RocMetrics {
  const P = pos.length, Q = neg.length;
  const all: [number, 0 | 1][] = [];
  for (let i = 0; i < P; i++) all.push([pos[i], 1]);
  for (let i = 0; i < Q; i++) all.push([neg[i], 0]);
  all.sort((a, b) => b[0] - a[0]);
  let tp = 0, fp = 0, auc = 0, prevFar = 0, prevTar = 0;
  let bestAcc = Q / Math.max(1, P + Q), bestThr = all.length ? all[0][0] + 1e-6 : 1;
  const tarAt: Record<string, number> = {}, thrAt: Record<string, number> = {};
  for (const f of FARS) {
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
    for (const f of FARS) {
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

/** Result of {@link kFoldProtocol}. */
export interface ProtocolResult extends RocMetrics {
  folds: number;
  /** Per-fold accuracy with the threshold chosen on the other folds. */
  foldAccuracy: number[];
  foldThreshold: number[];
  /** Mean and (population) standard deviation of {@link foldAccuracy}. */
  meanAccuracy: number;
  stdAccuracy: number;
  /** Smallest non-zero FAR the impostor pairs can resolve (1 / impostor pairs). */
  farResolution: number;
}

function bestThreshold(scores: ArrayLike<number>, same: ArrayLike<boolean>, use: (i: number) => boolean) {
  const pos: number[] = [], neg: number[] = [];
  for (let i = 0; i < scores.length; i++) if (use(i)) (same[i] ? pos : neg).push(scores[i]);
  return rocMetrics(pos, neg).threshold;
}

/**
 * The LFW k-fold protocol on pair scores. `fold[i]` ∈ 0..k−1 assigns pair i to a fold. With one
 * fold there is nothing to hold out: the threshold is fitted on that fold itself (an optimistic
 * number, flagged by `folds: 1`).
 */
export function kFoldProtocol(
  scores: ArrayLike<number>,
  same: ArrayLike<boolean>,
  fold: ArrayLike<number>,
): ProtocolResult {
  const n = scores.length;
  if (same.length !== n || fold.length !== n) {
    throw new InvalidArgumentError("scores, labels and folds must have one entry per pair");
  }
  if (n === 0) throw new InvalidArgumentError("no pairs to evaluate");
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(scores[i])) throw new InvalidArgumentError(`pair ${i} has score ${scores[i]}`);
  }
  const k = Math.max(...Array.from(fold)) + 1;
  const foldAccuracy: number[] = [], foldThreshold: number[] = [];
  for (let f = 0; f < k; f++) {
    const thr = bestThreshold(scores, same, (i) => k === 1 || fold[i] !== f);
    let hit = 0, cnt = 0;
    for (let i = 0; i < n; i++) {
      if (fold[i] !== f) continue;
      cnt++;
      if ((scores[i] >= thr) === Boolean(same[i])) hit++;
    }
    if (cnt === 0) throw new InvalidArgumentError(`fold ${f + 1} of ${k} has no pairs`);
    foldAccuracy.push(hit / cnt);
    foldThreshold.push(thr);
  }
  const mean = foldAccuracy.reduce((a, b) => a + b, 0) / k;
  const std = Math.sqrt(foldAccuracy.reduce((a, b) => a + (b - mean) ** 2, 0) / k);
  const pos: number[] = [], neg: number[] = [];
  for (let i = 0; i < n; i++) (same[i] ? pos : neg).push(scores[i]);
  return {
    ...rocMetrics(pos, neg),
    folds: k,
    foldAccuracy,
    foldThreshold,
    meanAccuracy: mean,
    stdAccuracy: std,
    farResolution: neg.length ? 1 / neg.length : NaN,
  };
}

/** Cosine similarity of rows `i` and `j` of an (N × D) embedding matrix (rows L2-normalised here). */
export function cosine(emb: Float32Array, D: number, i: number, j: number): number {
  let s = 0, a = 0, b = 0;
  for (let d = 0; d < D; d++) {
    const x = emb[i * D + d], y = emb[j * D + d];
    s += x * y, a += x * x, b += y * y;
  }
  return s / Math.sqrt(Math.max(a * b, 1e-24));
}
