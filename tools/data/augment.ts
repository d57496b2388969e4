/**
 * Batch assembly from uint8 NCHW image sets: random crop with zero padding, horizontal flip,
 * per-channel normalisation. The same normalisation is written into the checkpoint metadata
 * (see runtime/src/image/normalize.ts) so inference applies exactly what training saw.
 */
import type { ImageSet } from "./fashion_mnist.ts";

/** Augmentation/normalisation options. */
export interface BatchOptions {
  /** Zero padding for the random crop (0 = no crop). */
  pad: number;
  /** Random horizontal flip. */
  flip: boolean;
  /** Per-channel mean and std of pixel/255. */
  mean: number[];
  std: number[];
}

/** Fill a (B, C, H, W) float batch for the given sample indices. `rnd` = null → no augmentation. */
export function makeBatch(
  set: ImageSet,
  idx: ArrayLike<number>,
  o: BatchOptions,
  rnd: (() => number) | null,
) {
  const { c: C, h: H, w: W } = set;
  const B = idx.length, plane = H * W;
  const x = new Float32Array(B * C * plane);
  const y = new Int32Array(B);
  const scale = o.std.map((s) => 1 / (255 * s));
  const shift = o.mean.map((m, i) => -m / o.std[i]);
  for (let b = 0; b < B; b++) {
    const n = idx[b];
    y[b] = set.labels[n];
    const dy = rnd && o.pad ? Math.floor(rnd() * (2 * o.pad + 1)) - o.pad : 0;
    const dx = rnd && o.pad ? Math.floor(rnd() * (2 * o.pad + 1)) - o.pad : 0;
    const flip = rnd && o.flip ? rnd() < 0.5 : false;
    for (let c = 0; c < C; c++) {
      const src = (n * C + c) * plane, dst = (b * C + c) * plane;
      const sc = scale[c], sh = shift[c];
      for (let yy = 0; yy < H; yy++) {
        const sy = yy + dy;
        for (let xx = 0; xx < W; xx++) {
          const sx0 = xx + dx;
          const sx = flip ? W - 1 - sx0 : sx0;
          const v = sy >= 0 && sy < H && sx >= 0 && sx < W ? set.images[src + sy * W + sx] : 0;
          x[dst + yy * W + xx] = v * sc + sh;
        }
      }
    }
  }
  return { x, y };
}

/** Fisher–Yates permutation of 0..n-1. */
export function permutation(n: number, rnd: () => number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}
