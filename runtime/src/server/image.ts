/**
 * Image intake for the API: header probe (size and EXIF orientation, before any pixel is decoded),
 * JPEG/PNG decode with pure-JS libraries (run unchanged on Deno and Cloudflare Workers), orientation,
 * colour conversion and an antialiased resampler. Every bad input becomes an {@link ApiError}.
 */
import jpeg from "jpeg-js";
import { convertIndexedToRgb, decode as decodePng } from "fast-png";
import { imageSize } from "image-size";
import { ApiError } from "./errors.ts";

/** Decoded image: 8-bit RGB, interleaved, upright (EXIF orientation applied). */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Planar float image (C, H, W), values in the 0..255 range. */
export interface Planar {
  c: number;
  h: number;
  w: number;
  data: Float32Array;
}

/** What the header says, read without decoding pixels. */
export interface ImageInfo {
  format: "jpeg" | "png";
  /** Stored (pre-orientation) size. */
  width: number;
  height: number;
  /** EXIF orientation 1..8 (1 = as stored). JPEG only; PNG is always 1. */
  orientation: number;
}

/** Default pixel cap: 40 megapixels. */
export const DEFAULT_MAX_PIXELS = 40_000_000;

const isJpeg = (b: Uint8Array) => b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
const isPng = (b: Uint8Array) =>
  b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 && b[4] === 0x0d &&
  b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a;

/**
 * Read format, size and orientation from the header only, and refuse images over `maxPixels`
 * (`image_too_large`) so that a decompression bomb costs a few bytes of parsing, not gigabytes.
 */
export function probeImage(bytes: Uint8Array, maxPixels = DEFAULT_MAX_PIXELS): ImageInfo {
  if (bytes.length === 0) throw new ApiError("invalid_image", "image is empty");
  let format: ImageInfo["format"];
  if (isJpeg(bytes)) format = "jpeg";
  else if (isPng(bytes)) format = "png";
  else {
    let other: string | undefined;
    try {
      other = imageSize(bytes).type;
    } catch { /* not any known format */ }
    if (other) {
      throw new ApiError(
        "unsupported_media_type",
        `image format '${other}' is not supported; send JPEG or PNG`,
      );
    }
    throw new ApiError("invalid_image", "bytes are not a JPEG or PNG image");
  }
  let size: { width?: number; height?: number; orientation?: number };
  try {
    size = imageSize(bytes);
  } catch (e) {
    throw new ApiError("invalid_image", `cannot read the ${format} header: ${(e as Error).message}`);
  }
  const width = size.width ?? 0, height = size.height ?? 0;
  if (!(width > 0 && height > 0)) throw new ApiError("invalid_image", `${format} header has no valid size`);
  if (width * height > maxPixels) {
    throw new ApiError(
      "image_too_large",
      `image is ${width}×${height} = ${(width * height / 1e6).toFixed(1)} MP; the limit is ${
        (maxPixels / 1e6).toFixed(1)
      } MP. Downscale it on the device before upload`,
    );
  }
  const o = size.orientation;
  return { format, width, height, orientation: o && o >= 1 && o <= 8 ? o : 1 };
}

/** Decode a JPEG or PNG to upright 8-bit RGB (greyscale expanded, alpha dropped as PIL's convert("RGB")). */
export function decodeImage(bytes: Uint8Array, maxPixels = DEFAULT_MAX_PIXELS): RgbImage {
  const info = probeImage(bytes, maxPixels);
  const img = info.format === "jpeg" ? decodeJpeg(bytes, info, maxPixels) : decodePngRgb(bytes, info);
  return orient(img, info.orientation);
}

function decodeJpeg(bytes: Uint8Array, info: ImageInfo, maxPixels: number): RgbImage {
  try {
    const d = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      // Second line of defence: the header probe already enforced the cap.
      maxResolutionInMP: Math.max(1, maxPixels / 1e6),
      maxMemoryUsageInMB: Math.max(64, Math.ceil((maxPixels * 8) / 2 ** 20)),
    });
    if (d.width !== info.width || d.height !== info.height) {
      throw new Error(`decoded size ${d.width}×${d.height} differs from header ${info.width}×${info.height}`);
    }
    return { width: d.width, height: d.height, data: d.data as Uint8Array };
  } catch (e) {
    throw new ApiError("invalid_image", `JPEG decode failed: ${(e as Error).message}`);
  }
}

function decodePngRgb(bytes: Uint8Array, info: ImageInfo): RgbImage {
  let p;
  try {
    p = decodePng(bytes);
  } catch (e) {
    throw new ApiError("invalid_image", `PNG decode failed: ${(e as Error).message}`);
  }
  const { width, height } = p;
  if (width !== info.width || height !== info.height) {
    throw new ApiError("invalid_image", "PNG size differs from its header");
  }
  const n = width * height;
  let src: ArrayLike<number>;
  let ch: number;
  let max: number;
  if (p.palette) {
    src = convertIndexedToRgb(p);
    ch = p.palette[0].length;
    max = 255;
  } else {
    ch = p.channels;
    max = (1 << p.depth) - 1;
    src = p.depth < 8 ? unpackBits(p.data as Uint8Array, width, height, ch, p.depth) : p.data;
  }
  if (src.length < n * ch) throw new ApiError("invalid_image", "PNG pixel data is truncated");
  const out = new Uint8Array(n * 3);
  const s = 255 / max;
  const grey = ch <= 2; // G or GA
  for (let i = 0; i < n; i++) {
    const o = i * ch;
    if (grey) {
      const v = Math.round(src[o] * s);
      out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = v;
    } else {
      out[i * 3] = Math.round(src[o] * s);
      out[i * 3 + 1] = Math.round(src[o + 1] * s);
      out[i * 3 + 2] = Math.round(src[o + 2] * s);
    }
  }
  return { width, height, data: out };
}

/** 1/2/4-bit samples, rows padded to whole bytes → one sample per element. */
function unpackBits(data: Uint8Array, w: number, h: number, ch: number, depth: number): Uint8Array {
  const perRow = w * ch, rowBytes = Math.ceil((perRow * depth) / 8);
  const out = new Uint8Array(perRow * h);
  const mask = (1 << depth) - 1;
  for (let y = 0; y < h; y++) {
    for (let i = 0; i < perRow; i++) {
      const bit = i * depth;
      const byte = data[y * rowBytes + (bit >> 3)];
      out[y * perRow + i] = (byte >> (8 - depth - (bit & 7))) & mask;
    }
  }
  return out;
}

/** Apply an EXIF orientation (1..8) so the result is upright. */
export function orient(img: RgbImage, o: number): RgbImage {
  if (o === 1) return img;
  const { width: W, height: H, data } = img;
  const swap = o >= 5;
  const w = swap ? H : W, h = swap ? W : H;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      // (sx, sy): source pixel shown at output (x, y) for each EXIF orientation.
      let sx: number, sy: number;
      switch (o) {
        case 2:
          sx = W - 1 - x, sy = y;
          break;
        case 3:
          sx = W - 1 - x, sy = H - 1 - y;
          break;
        case 4:
          sx = x, sy = H - 1 - y;
          break;
        case 5:
          sx = y, sy = x;
          break;
        case 6:
          sx = y, sy = H - 1 - x;
          break;
        case 7:
          sx = W - 1 - y, sy = H - 1 - x;
          break;
        default: // 8
          sx = W - 1 - y, sy = x;
      }
      const si = (sy * W + sx) * 3, di = (y * w + x) * 3;
      out[di] = data[si];
      out[di + 1] = data[si + 1];
      out[di + 2] = data[si + 2];
    }
  }
  return { width: w, height: h, data: out };
}

/** RGB interleaved → planar float with 3 channels, or 1 channel of ITU-R 601 luma (as PIL "L"). */
export function toPlanar(img: RgbImage, channels: 1 | 3): Planar {
  const n = img.width * img.height, d = img.data;
  const out = new Float32Array(n * channels);
  if (channels === 1) {
    for (let i = 0; i < n; i++) out[i] = 0.299 * d[i * 3] + 0.587 * d[i * 3 + 1] + 0.114 * d[i * 3 + 2];
  } else {
    for (let i = 0; i < n; i++) {
      out[i] = d[i * 3];
      out[n + i] = d[i * 3 + 1];
      out[2 * n + i] = d[i * 3 + 2];
    }
  }
  return { c: channels, h: img.height, w: img.width, data: out };
}

/** A source rectangle in pixel units (may be fractional and may extend past the image). */
export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/**
 * Triangle-filter weights for one axis (PIL's BILINEAR with antialiasing): when shrinking by `scale`
 * the filter support widens by the same factor, so every source pixel contributes (area-like).
 * Samples outside [0, inLen) are dropped and the weights renormalised.
 */
function axisWeights(inLen: number, start: number, len: number, outLen: number) {
  const scale = len / outLen;
  const support = Math.max(scale, 1);
  const first = new Int32Array(outLen), count = new Int32Array(outLen);
  const maxTaps = Math.ceil(support) * 2 + 2;
  const w = new Float32Array(outLen * maxTaps);
  for (let i = 0; i < outLen; i++) {
    const center = start + (i + 0.5) * scale;
    // Taps stay inside the box (whole pixels) so a crop+resize never bleeds in pixels from outside it.
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

/** Resample the `box` region of a planar image to `outW × outH` (separable, antialiased). */
export function resize(src: Planar, box: Box, outW: number, outH: number): Planar {
  const { c, h: H, w: W, data } = src;
  const hx = axisWeights(W, box.x, box.w, outW);
  const hy = axisWeights(H, box.y, box.h, outH);
  // Horizontal pass only over the rows the vertical pass will read.
  let y0 = H, y1 = 0;
  for (let i = 0; i < outH; i++) {
    y0 = Math.min(y0, hy.first[i]);
    y1 = Math.max(y1, hy.first[i] + hy.count[i]);
  }
  if (y1 <= y0) return { c, h: outH, w: outW, data: new Float32Array(c * outH * outW) };
  const rows = y1 - y0;
  const tmp = new Float32Array(c * rows * outW);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < rows; y++) {
      const srow = (ch * H + y0 + y) * W, trow = (ch * rows + y) * outW;
      for (let x = 0; x < outW; x++) {
        let s = 0;
        const f = hx.first[x], base = x * hx.maxTaps;
        for (let k = 0; k < hx.count[x]; k++) s += hx.w[base + k] * data[srow + f + k];
        tmp[trow + x] = s;
      }
    }
  }
  const out = new Float32Array(c * outH * outW);
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

/**
 * Centre crop to the target aspect ratio (the largest centred box), then resize to `outW × outH`.
 * This is what the API does when no landmarks are given.
 */
export function centerCropResize(src: Planar, outW: number, outH: number): Planar {
  const target = outW / outH;
  let bw = src.w, bh = src.h;
  if (bw / bh > target) bw = bh * target;
  else bh = bw / target;
  return resize(src, { x: (src.w - bw) / 2, y: (src.h - bh) / 2, w: bw, h: bh }, outW, outH);
}

/**
 * Inverse-warp with bilinear sampling: output pixel centre (x+.5, y+.5) maps to the source through
 * `inv` = [a, b, tx, c, d, ty] (source = [a b; c d]·p + t). Pixels that land outside are 0, like
 * cv2.warpAffine's default border in the usual face-alignment recipe.
 */
export function warpAffine(src: Planar, inv: number[], outW: number, outH: number): Planar {
  const { c, h: H, w: W, data } = src;
  const [a, b, tx, cc, d, ty] = inv;
  const out = new Float32Array(c * outH * outW);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const px = x + 0.5, py = y + 0.5;
      const sx = a * px + b * py + tx - 0.5, sy = cc * px + d * py + ty - 0.5;
      const x0 = Math.floor(sx), y0 = Math.floor(sy);
      const fx = sx - x0, fy = sy - y0;
      for (let ch = 0; ch < c; ch++) {
        const base = ch * H * W;
        const at = (
          xx: number,
          yy: number,
        ) => (xx >= 0 && yy >= 0 && xx < W && yy < H ? data[base + yy * W + xx] : 0);
        const v = (1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x0 + 1, y0)) +
          fy * ((1 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1));
        out[(ch * outH + y) * outW + x] = v;
      }
    }
  }
  return { c, h: outH, w: outW, data: out };
}

/** Scale 0..255 values to `(v/255 - mean[c]) / std[c]` in place; returns the data. */
export function normalize(p: Planar, mean?: number[], std?: number[]): Float32Array {
  const n = p.h * p.w;
  for (let ch = 0; ch < p.c; ch++) {
    const m = mean?.[ch] ?? mean?.[0] ?? 0, s = std?.[ch] ?? std?.[0] ?? 1;
    const k = 1 / (255 * s), o = m / s;
    for (let i = ch * n; i < (ch + 1) * n; i++) p.data[i] = p.data[i] * k - o;
  }
  return p.data;
}
