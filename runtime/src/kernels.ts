/**
 * Plain float32 NCHW kernels used by the reference forward and the fold. Written for clarity
 * first; loops are ordered so the inner one runs over contiguous memory.
 */
import { type F32, f32 } from "./tensor.ts";

/** Grouped 2-D convolution, square kernel, zero padding. w: (O, C/groups, k, k). */
export function conv2d(
  x: F32,
  w: Float32Array,
  bias: Float32Array | null,
  o: { outC: number; k: number; stride: number; pad: number; groups: number },
): F32 {
  const [N, C, H, W] = x.shape;
  const { outC: O, k, stride, pad, groups } = o;
  const Ho = Math.floor((H + 2 * pad - k) / stride) + 1;
  const Wo = Math.floor((W + 2 * pad - k) / stride) + 1;
  const cg = C / groups, og = O / groups;
  const y = f32([N, O, Ho, Wo]);
  const X = x.data, Y = y.data;
  for (let n = 0; n < N; n++) {
    for (let oc = 0; oc < O; oc++) {
      const g = Math.floor(oc / og);
      const yo = (n * O + oc) * Ho * Wo;
      if (bias) Y.fill(bias[oc], yo, yo + Ho * Wo);
      for (let ci = 0; ci < cg; ci++) {
        const xc = (n * C + g * cg + ci) * H * W;
        for (let ky = 0; ky < k; ky++) {
          for (let kx = 0; kx < k; kx++) {
            const wv = w[((oc * cg + ci) * k + ky) * k + kx];
            if (wv === 0) continue;
            for (let oy = 0; oy < Ho; oy++) {
              const iy = oy * stride + ky - pad;
              if (iy < 0 || iy >= H) continue;
              const xr = xc + iy * W, yr = yo + oy * Wo;
              for (let ox = 0; ox < Wo; ox++) {
                const ix = ox * stride + kx - pad;
                if (ix >= 0 && ix < W) Y[yr + ox] += wv * X[xr + ix];
              }
            }
          }
        }
      }
    }
  }
  return y;
}

/** Per-channel affine y = x·scale[c] + shift[c] over (N, C, …) in place-free form. */
export function channelAffine(x: F32, scale: Float32Array, shift: Float32Array): F32 {
  const [N, C] = x.shape;
  const inner = x.data.length / (N * C);
  const y = f32(x.shape);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const o = (n * C + c) * inner, s = scale[c], b = shift[c];
      for (let i = 0; i < inner; i++) y.data[o + i] = x.data[o + i] * s + b;
    }
  }
  return y;
}

/** (N, F) · Wᵀ + b, W: (O, F). Accumulates in float64 for a stable oracle. */
export function linear(
  x: Float32Array,
  N: number,
  F: number,
  w: Float32Array,
  b: Float32Array | null,
  O: number,
) {
  const y = new Float32Array(N * O);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      let s = b ? b[o] : 0;
      const wr = o * F, xr = n * F;
      for (let f = 0; f < F; f++) s += w[wr + f] * x[xr + f];
      y[n * O + o] = s;
    }
  }
  return y;
}

/** erf(x) to ~1e-15: Taylor series near 0, continued fraction for erfc in the tails. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    // erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))
    let term = ax, sum = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 60; n++) {
      term *= -x2 / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    const r = sum * 2 / Math.sqrt(Math.PI);
    return x < 0 ? -r : r;
  }
  if (ax > 6) return x < 0 ? -1 : 1;
  // erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + …)))) (Lentz-free backward evaluation)
  let f = ax;
  for (let n = 60; n >= 1; n--) f = ax + (n / 2) / f;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return x < 0 ? erfc - 1 : 1 - erfc;
}

/** Pointwise activation into a new tensor. */
export function activate(x: F32, fn: "relu" | "gelu" | "sigmoid"): F32 {
  const y = f32(x.shape);
  const a = x.data, b = y.data;
  if (fn === "relu") { for (let i = 0; i < a.length; i++) b[i] = a[i] > 0 ? a[i] : 0; }
  else if (fn === "sigmoid") { for (let i = 0; i < a.length; i++) b[i] = 1 / (1 + Math.exp(-a[i])); }
  else for (let i = 0; i < a.length; i++) b[i] = 0.5 * a[i] * (1 + erf(a[i] / Math.SQRT2));
  return y;
}

/** BN eval-mode scale/shift: t = γ/√(var+eps), b = β − μ·t. */
export function bnAffine(
  gamma: Float32Array,
  beta: Float32Array,
  mean: Float32Array,
  variance: Float32Array,
  eps: number,
): { t: Float32Array; b: Float32Array } {
  const n = gamma.length;
  const t = new Float32Array(n), b = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const s = gamma[i] / Math.sqrt(variance[i] + eps);
    t[i] = s;
    b[i] = beta[i] - mean[i] * s;
  }
  return { t, b };
}

/** Max or average pool over square windows without padding (TF "valid"), NCHW. */
export function pool2d(x: F32, k: number, stride: number, op: "max" | "avg"): F32 {
  const [N, C, H, W] = x.shape;
  const Ho = Math.floor((H - k) / stride) + 1, Wo = Math.floor((W - k) / stride) + 1;
  const y = f32([N, C, Ho, Wo]);
  for (let nc = 0; nc < N * C; nc++) {
    const xi = nc * H * W, yi = nc * Ho * Wo;
    for (let oy = 0; oy < Ho; oy++) {
      for (let ox = 0; ox < Wo; ox++) {
        let acc = op === "max" ? -Infinity : 0;
        for (let ky = 0; ky < k; ky++) {
          const r = xi + (oy * stride + ky) * W + ox * stride;
          for (let kx = 0; kx < k; kx++) {
            const v = x.data[r + kx];
            acc = op === "max" ? (v > acc ? v : acc) : acc + v;
          }
        }
        y.data[yi + oy * Wo + ox] = op === "max" ? acc : acc / (k * k);
      }
    }
  }
  return y;
}

/** Append zeros at the end of the channel, height and width axes of NCHW `x`. */
export function zeroPadEnd(x: F32, c: number, h: number, w: number): F32 {
  const [N, C, H, W] = x.shape;
  const C2 = C + c, H2 = H + h, W2 = W + w;
  const y = f32([N, C2, H2, W2]);
  for (let n = 0; n < N; n++) {
    for (let ch = 0; ch < C; ch++) {
      for (let yy = 0; yy < H; yy++) {
        const src = ((n * C + ch) * H + yy) * W, dst = ((n * C2 + ch) * H2 + yy) * W2;
        y.data.set(x.data.subarray(src, src + W), dst);
      }
    }
  }
  return y;
}
