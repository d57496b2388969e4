/**
 * Resampling from 8-bit RGB into the model's planar float layout: an antialiased separable resize of
 * a box (PIL's BILINEAR with support widened when shrinking), a bilinear affine warp, and channel
 * conversion (RGB or ITU-R 601 luma, as PIL's "L"). Only output-sized float buffers are made.
 */
import type { RgbImage } from "./orient.ts";

/** Planar float image (C, H, W), values in the 0..255 range. */
export interface Planar {
  /** Channels. */
  c: number;
  /** Height. */
  h: number;
  /** Width. */
  w: number;
  /** `c·h·w` values, channel-major. */
  data: Float32Array;
}

/** A source rectangle in pixel units (may be fractional and may extend past the image). */
export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Channel `ch` of pixel `i` (index into pixels, not bytes) as float: RGB, or luma when `c === 1`. */
function px(d: Uint8Array, i: number, c: number, ch: number): number {
  const o = i * 3;
  return c === 1 ? 0.299 * d[o] + 0.587 * d[o + 1] + 0.114 * d[o + 2] : d[o + ch];
}

/** RGB interleaved → planar float with 3 channels, or 1 channel of luma. */
export function toPlanar(img: RgbImage, channels: 1 | 3): Planar {
  const n = img.width * img.height, d = img.data;
  const out = new Float32Array(n * channels);
  for (let ch = 0; ch < channels; ch++) for (let i = 0; i < n; i++) out[ch * n + i] = px(d, i, channels, ch);
  return { c: channels, h: img.height, w: img.width, data: out };
}

/**
 * Triangle-filter weights for one axis: when shrinking by `scale` the support widens by the same
 * factor, so every source pixel contributes (area-like). Taps stay inside the box (whole pixels), so a
 * crop never bleeds in pixels from outside it; weights are renormalised.
 */
function axisWeights(inLen: number, start: number, len: number, outLen: number) {
  const scale = len / outLen;
  const support = Math.max(scale, 1);
  const first = new Int32Array(outLen), count = new Int32Array(outLen);
  const maxTaps = Math.ceil(support) * 2 + 2;
  const w = new Float32Array(outLen * maxTaps);
  for (let i = 0; i < outLen; i++) {
    const center = start + (i + 0.5) * scale;
    const lo = Math.max(0, Math.floor(start), Math.floor(center - support));
    const hi = Math.min(inLen, Math.ceil(start + len), Math.ceil(center + support));
    let sum = 0, k = 0;
    first[i] = lo;
    for (let j = lo; j < hi && k < maxTaps; j++, k++) {
      const t = 1 - Math.abs((j + 0.5 - center) / support);
      const v = t > 0 ? t : 0;
      w[i * maxTaps + k] = v;
      sum += v;
    }
    count[i] = k;
    if (sum > 0) { for (let q = 0; q < k; q++) w[i * maxTaps + q] /= sum; }
  }
  return { first, count, w, maxTaps };
}

/** Resample the `box` region of an RGB image to `outW × outH` planar floats with `c` channels. */
export function resize(src: RgbImage, box: Box, outW: number, outH: number, c: 1 | 3): Planar {
  const { height: H, width: W, data } = src;
  const hx = axisWeights(W, box.x, box.w, outW);
  const hy = axisWeights(H, box.y, box.h, outH);
  let y0 = H, y1 = 0;
  for (let i = 0; i < outH; i++) {
    y0 = Math.min(y0, hy.first[i]);
    y1 = Math.max(y1, hy.first[i] + hy.count[i]);
  }
  const out = new Float32Array(c * outH * outW);
  if (y1 <= y0) return { c, h: outH, w: outW, data: out };
  const rows = y1 - y0;
  // Horizontal pass only over the rows the vertical pass reads.
  const tmp = new Float32Array(c * rows * outW);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < rows; y++) {
      const srow = (y0 + y) * W, trow = (ch * rows + y) * outW;
      for (let x = 0; x < outW; x++) {
        let s = 0;
        const f = hx.first[x], base = x * hx.maxTaps;
        for (let k = 0; k < hx.count[x]; k++) s += hx.w[base + k] * px(data, srow + f + k, c, ch);
        tmp[trow + x] = s;
      }
    }
  }
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < outH; y++) {
      const f = hy.first[y] - y0, base = y * hy.maxTaps, orow = (ch * outH + y) * outW;
      for (let k = 0; k < hy.count[y]; k++) {
        const wv = hy.w[base + k], trow = (ch * rows + f + k) * outW;
        for (let x = 0; x < outW; x++) out[orow + x] += wv * tmp[trow + x];
      }
    }
  }
  return { c, h: outH, w: outW, data: out };
}

/** The largest box of aspect `outW / outH` centred in a `w × h` image. */
export function centerBox(w: number, h: number, outW: number, outH: number): Box {
  const target = outW / outH;
  let bw = w, bh = h;
  if (bw / bh > target) bw = bh * target;
  else bh = bw / target;
  return { x: (w - bw) / 2, y: (h - bh) / 2, w: bw, h: bh };
}

/** Centre crop to the target aspect ratio, then resize to `outW × outH`. */
export function centerCropResize(src: RgbImage, outW: number, outH: number, c: 1 | 3): Planar {
  return resize(src, centerBox(src.width, src.height, outW, outH), outW, outH, c);
}

/**
 * Inverse-warp with bilinear sampling: output pixel centre (x+.5, y+.5) maps to the source through
 * `inv` = [a, b, tx, c, d, ty] (source = [a b; c d]·p + t). Pixels that land outside are 0, like
 * cv2.warpAffine's default border in the usual face-alignment recipe.
 */
export function warpAffine(src: Planar, inv: readonly number[], outW: number, outH: number): Planar {
  const { c, h: H, w: W, data } = src;
  const [a, b, tx, cc, d, ty] = inv;
  const out = new Float32Array(c * outH * outW);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const qx = x + 0.5, qy = y + 0.5;
      const sx = a * qx + b * qy + tx - 0.5, sy = cc * qx + d * qy + ty - 0.5;
      const x0 = Math.floor(sx), y0 = Math.floor(sy);
      const fx = sx - x0, fy = sy - y0;
      for (let ch = 0; ch < c; ch++) {
        const base = ch * H * W;
        const at = (
          xx: number,
          yy: number,
        ) => (xx >= 0 && yy >= 0 && xx < W && yy < H ? data[base + yy * W + xx] : 0);
        out[(ch * outH + y) * outW + x] = (1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x0 + 1, y0)) +
          fy * ((1 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1));
      }
    }
  }
  return { c, h: outH, w: outW, data: out };
}
