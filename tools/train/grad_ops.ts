/**
 * Differentiable building blocks with hand-written gradients where tfjs-wasm is missing kernels
 * (Conv2DBackpropFilter) or slow (matMul with transpose flags is ~10–20× slower than a plain
 * matMul after an explicit transpose). Activations are NHWC inside the training graph.
 */
import * as tf from "@tensorflow/tfjs";

/** (M, K) · (K, N) with gradients computed by plain (non-transposed-flag) matMuls. */
export const mm: (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D = tf.customGrad(
  // deno-lint-ignore no-explicit-any
  ((a: tf.Tensor2D, b: tf.Tensor2D, save: any) => {
    save([a, b]);
    return {
      value: tf.matMul(a, b),
      gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
        const [sa, sb] = saved as tf.Tensor2D[];
        // db = aᵀ·dy; transposing the narrower operand is far cheaper (wasm transpose is slow).
        const db = sa.shape[1] > dy.shape[1]
          ? tf.transpose(tf.matMul(tf.transpose(dy), sa))
          : tf.matMul(tf.transpose(sa), dy);
        return [tf.matMul(dy, tf.transpose(sb)), db];
      },
    };
    // deno-lint-ignore no-explicit-any
  }) as any,
) as unknown as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/** Batched (B, M, K) · (B, K, N) with plain-matMul gradients (explicit transposes). */
export const bmm: (a: tf.Tensor3D, b: tf.Tensor3D) => tf.Tensor3D = tf.customGrad(
  // deno-lint-ignore no-explicit-any
  ((a: tf.Tensor3D, b: tf.Tensor3D, save: any) => {
    save([a, b]);
    return {
      value: tf.matMul(a, b),
      gradFunc: (dy: tf.Tensor3D, saved: tf.Tensor[]) => {
        const [sa, sb] = saved as tf.Tensor3D[];
        const t = (x: tf.Tensor3D) => tf.transpose(x, [0, 2, 1]) as tf.Tensor3D;
        const db = sa.shape[2] > dy.shape[2] ? t(tf.matMul(t(dy), sa)) : tf.matMul(t(sa), dy);
        return [tf.matMul(dy, t(sb)), db];
      },
    };
    // deno-lint-ignore no-explicit-any
  }) as any,
) as unknown as (a: tf.Tensor3D, b: tf.Tensor3D) => tf.Tensor3D;

/**
 * Grouped FC: x (g, R, in) with weight (g·out, in) (PyTorch grouped 1×1 conv rows) → (g, R, out).
 * Groups live on the leading axis so no slice ever cuts the contiguous (last) axis.
 */
export function groupedLinear(x: tf.Tensor3D, w: tf.Tensor, g: number): tf.Tensor3D {
  const inLen = x.shape[2];
  const wg = tf.transpose(tf.reshape(w, [g, -1, inLen]), [0, 2, 1]) as tf.Tensor3D; // (g, in, out)
  if (g === 1) {
    return tf.reshape(
      mm(tf.reshape(x, [-1, inLen]) as tf.Tensor2D, tf.reshape(wg, [inLen, -1]) as tf.Tensor2D),
      [1, x.shape[1], -1],
    );
  }
  // A loop of 2-D matMuls over contiguous leading-axis slices is ~2× faster than BatchMatMul on wasm.
  if (g > 32) return bmm(x, wg);
  const xs = tf.unstack(x), ws = tf.unstack(wg);
  return tf.stack(xs.map((xi, i) => mm(xi as tf.Tensor2D, ws[i] as tf.Tensor2D))) as tf.Tensor3D;
}

/** x (N, F) · Wᵀ + b with W in PyTorch layout (out, in). */
export function linear(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor | null): tf.Tensor2D {
  const y = mm(x as tf.Tensor2D, tf.transpose(w as tf.Tensor2D));
  return b ? tf.add(y, b) : y;
}

function flipToBackward(w: tf.Tensor4D): tf.Tensor4D {
  // HWIO kernel → rotated 180° with I/O swapped: the kernel of the input gradient of a stride-1 conv.
  return tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]);
}

/** Weight gradient of a valid conv: Σ_(ky,kx) slice(x)ᵀ · dy, as plain matMuls. */
function convFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, k: number, stride: number): tf.Tensor4D {
  const [N, , , C] = x.shape;
  const [, Ho, Wo, O] = dy.shape;
  const M = N * Ho * Wo;
  const dy2 = tf.reshape(dy, [M, O]) as tf.Tensor2D;
  const taps: tf.Tensor[] = [];
  for (let ky = 0; ky < k; ky++) {
    for (let kx = 0; kx < k; kx++) {
      const xs = tf.stridedSlice(
        x,
        [0, ky, kx, 0],
        [N, ky + stride * (Ho - 1) + 1, kx + stride * (Wo - 1) + 1, C],
        [1, stride, stride, 1],
      );
      taps.push(tf.matMul(tf.transpose(tf.reshape(xs, [M, C])), dy2));
    }
  }
  return tf.reshape(tf.stack(taps), [k, k, C, O]) as tf.Tensor4D;
}

/** Valid (unpadded) dense conv, NHWC input, HWIO kernel, with a wasm-friendly backward. */
function convValid(stride: number) {
  return tf.customGrad(
    // deno-lint-ignore no-explicit-any
    ((x: tf.Tensor4D, w: tf.Tensor4D, save: any) => {
      save([x, w]);
      return {
        value: tf.conv2d(x, w, stride, "valid"),
        gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
          const [sx, sw] = saved as tf.Tensor4D[];
          const k = sw.shape[0];
          let dx: tf.Tensor4D;
          if (stride === 1) {
            const p = k - 1;
            dx = k === 1
              ? tf.conv2d(dy, flipToBackward(sw), 1, "valid")
              : tf.conv2d(tf.pad(dy, [[0, 0], [p, p], [p, p], [0, 0]]), flipToBackward(sw), 1, "valid");
          } else {
            dx = tf.conv2dTranspose(dy, sw, sx.shape, stride, "valid");
          }
          return [dx, convFilterGrad(sx, dy, k, stride)];
        },
      };
      // deno-lint-ignore no-explicit-any
    }) as any,
  ) as unknown as (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D;
}

/**
 * Valid depthwise conv (stride 1), kernel (k, k, C, 1): forward by the wasm kernel; backward
 * dx = depthwise(pad(dy), rot180(w)), dw = Σ_(N,H,W) slice(x)·dy per tap.
 */
const depthwise = tf.customGrad(
  // deno-lint-ignore no-explicit-any
  ((x: tf.Tensor4D, w: tf.Tensor4D, save: any) => {
    save([x, w]);
    return {
      value: tf.depthwiseConv2d(x, w, 1, "valid"),
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [sx, sw] = saved as tf.Tensor4D[];
        const k = sw.shape[0], p = k - 1;
        const [N, Ho, Wo, C] = dy.shape;
        const dx = tf.depthwiseConv2d(
          tf.pad(dy, [[0, 0], [p, p], [p, p], [0, 0]]),
          tf.reverse(sw, [0, 1]),
          1,
          "valid",
        );
        const taps: tf.Tensor[] = [];
        for (let ky = 0; ky < k; ky++) {
          for (let kx = 0; kx < k; kx++) {
            taps.push(tf.sum(tf.mul(tf.slice(sx, [0, ky, kx, 0], [N, Ho, Wo, C]), dy), [0, 1, 2]));
          }
        }
        return [dx, tf.reshape(tf.stack(taps), [k, k, C, 1])];
      },
    };
    // deno-lint-ignore no-explicit-any
  }) as any,
) as unknown as (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D;

const convByStride = new Map<number, (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D>();

/**
 * Grouped conv2d, NHWC activations, weight in PyTorch layout (O, I/groups, k, k), zero padding,
 * no bias. Depthwise convs (one input channel per group) are done as k² shifted multiply-adds.
 */
export function conv2d(
  x: tf.Tensor4D,
  wt: tf.Tensor,
  o: { stride: number; pad: number; groups: number },
): tf.Tensor4D {
  const w = wt as tf.Tensor4D;
  const [O, Cg, k] = w.shape;
  const { stride, pad, groups } = o;
  const xp = pad > 0 ? tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]]) : x;
  if (Cg === 1 && groups === O && groups === x.shape[3] && stride === 1) {
    // Depthwise: y[.., c] = Σ_(ky,kx) x[.., y+ky, x+kx, c] · w[c, 0, ky, kx].
    if (k === 1) return tf.mul(xp, tf.reshape(w, [O])) as tf.Tensor4D;
    return depthwise(xp, tf.reshape(tf.transpose(w, [2, 3, 0, 1]), [k, k, O, 1]) as tf.Tensor4D);
  }
  if (k === stride && pad === 0 && groups === 1 && xp.shape[1] % k === 0 && xp.shape[2] % k === 0) {
    // Patchify (k = stride, no padding): space-to-depth + one matMul, no strided backward needed.
    const [N, H, W, C] = xp.shape;
    const Ho = H / k, Wo = W / k;
    const cols = tf.reshape(tf.transpose(tf.reshape(xp, [N, Ho, k, Wo, k, C]), [0, 1, 3, 2, 4, 5]), [
      N * Ho * Wo,
      k * k * C,
    ]);
    const wm = tf.reshape(tf.transpose(w, [2, 3, 1, 0]), [k * k * C, O]);
    return tf.reshape(mm(cols as tf.Tensor2D, wm as tf.Tensor2D), [N, Ho, Wo, O]);
  }
  let f = convByStride.get(stride);
  if (!f) convByStride.set(stride, f = convValid(stride));
  const hwio = tf.transpose(w, [2, 3, 1, 0]) as tf.Tensor4D; // (k, k, Cg, O)
  if (groups === 1) return f(xp, hwio);
  // Grouped: one dense conv with a block-diagonal kernel. Slicing activations along channels (the
  // contiguous axis) is very slow on wasm; padding the small kernel costs nothing.
  const C = Cg * groups;
  const blocks = tf.split(w, groups, 0).map((wb, g) =>
    tf.pad(wb, [[0, 0], [g * Cg, C - (g + 1) * Cg], [0, 0], [0, 0]])
  );
  return f(xp, tf.transpose(tf.concat(blocks, 0), [2, 3, 1, 0]) as tf.Tensor4D);
}

/** Exact GELU (erf form, PyTorch default). */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
}

/**
 * Training-mode batch norm with a hand-written backward (far fewer passes than autograd through
 * moments): x̂ = (x − μ)·rstd, y = γx̂ + β;
 * dx = γ·rstd·(dy − mean(dy) − x̂·mean(dy·x̂)), dγ = Σ dy·x̂, dβ = Σ dy.
 * `gamma`/`beta` are already broadcast-shaped (1 … C … 1). Returns the biased batch variance.
 */
export function bnTrain(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  axes: number[],
  eps: number,
): { y: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor } {
  const { mean, variance } = tf.moments(x, axes, true);
  const f = tf.customGrad(
    // deno-lint-ignore no-explicit-any
    ((xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor, save: any) => {
      const rstd = tf.rsqrt(tf.add(variance, eps));
      const xhat = tf.mul(tf.sub(xi, mean), rstd);
      save([xhat, rstd, g]);
      return {
        value: tf.add(tf.mul(xhat, g), b),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [sx, sr, sg] = saved;
          const dBeta = tf.sum(dy, axes, true);
          const dGamma = tf.sum(tf.mul(dy, sx), axes, true);
          const n = axes.reduce((a, i) => a * dy.shape[i], 1);
          const dx = tf.mul(
            tf.mul(sg, tf.div(sr, n)),
            tf.sub(tf.sub(tf.mul(dy, n), dBeta), tf.mul(sx, dGamma)),
          );
          return [dx, dGamma, dBeta];
        },
      };
      // deno-lint-ignore no-explicit-any
    }) as any,
  );
  // deno-lint-ignore no-explicit-any
  const y = (f as any)(x, gamma, beta) as tf.Tensor;
  return { y, mean, variance };
}

const tapCache = new Map<string, tf.Tensor2D>();

/** Constant 0/1 (k², hw·hw) map: tap (dy,dx) links output pixel p to input pixel q (zero padding). */
function tapMatrix(k: number, h: number, w: number): tf.Tensor2D {
  const id = `${k}:${h}:${w}`;
  let t = tapCache.get(id);
  if (!t) {
    const hw = h * w, half = (k - 1) / 2;
    const m = new Float32Array(k * k * hw * hw);
    for (let dy = 0; dy < k; dy++) {
      for (let dx = 0; dx < k; dx++) {
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) {
            const y2 = y + dy - half, x2 = x + dx - half;
            if (y2 < 0 || y2 >= h || x2 < 0 || x2 >= w) continue;
            m[((dy * k + dx) * hw + y * w + x) * hw + y2 * w + x2] = 1;
          }
        }
      }
    }
    t = tf.keep(tf.tensor2d(m, [k * k, hw * hw]));
    tapCache.set(id, t);
  }
  return t;
}

/**
 * The FC equivalent of a same-padded grouped conv on one h×w partition, differentiable in the
 * conv weight: K (O, Cg, k, k) → W (O·hw, Cg·hw) with rows (o, y, x) and columns (c, y2, x2),
 * i.e. the layout of a grouped 1×1 fc3 weight. W[o,p,c,q] = Σ_t K[o,c,t]·T[t,p,q].
 */
export function convAsFC(wt: tf.Tensor, h: number, w: number): tf.Tensor2D {
  const [O, Cg, k] = wt.shape;
  const hw = h * w;
  const full = mm(tf.reshape(wt, [O * Cg, k * k]) as tf.Tensor2D, tapMatrix(k, h, w)); // (O·Cg, hw·hw)
  return tf.reshape(tf.transpose(tf.reshape(full, [O, Cg, hw, hw]), [0, 2, 1, 3]), [
    O * hw,
    Cg * hw,
  ]) as tf.Tensor2D;
}
