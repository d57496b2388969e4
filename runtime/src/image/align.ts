/**
 * Five-point face alignment: a least-squares similarity transform (Umeyama 1991, no reflection)
 * from the client's landmarks to the canonical ArcFace template, then an antialiased warp into the
 * model's crop.
 */
import { ImageError } from "../errors.ts";
import type { RgbImage } from "./orient.ts";
import { type Box, type Planar, resize, warpAffine } from "./resample.ts";

/** A point in image pixels (x right, y down) of the upright image. */
export type Point = [number, number];

/**
 * Canonical 5-point template for a 112×112 crop (InsightFace/ArcFace): eye on the image's left,
 * eye on the image's right, nose tip, mouth corner on the image's left, mouth corner on the right.
 * It is scaled to the model's crop size.
 */
export const FACE_TEMPLATE_112: readonly Point[] = [
  [38.2946, 51.6963],
  [73.5318, 51.5014],
  [56.0252, 71.7366],
  [41.5493, 92.3655],
  [70.7299, 92.2041],
];

/** 2×3 affine [a, b, tx, c, d, ty]: p' = [a b; c d]·p + t. */
export type Affine = [number, number, number, number, number, number];

/**
 * Least-squares similarity (scale, rotation, translation) mapping `src[i]` to `dst[i]`.
 * For 2-D points Umeyama's SVD solution reduces to the closed form below
 * (complex-number regression of centred points).
 */
export function fitSimilarity(src: readonly Point[], dst: readonly Point[]): Affine {
  const n = src.length;
  let mx = 0, my = 0, qx = 0, qy = 0;
  for (let i = 0; i < n; i++) {
    mx += src[i][0] / n, my += src[i][1] / n;
    qx += dst[i][0] / n, qy += dst[i][1] / n;
  }
  let sxx = 0, num1 = 0, num2 = 0;
  for (let i = 0; i < n; i++) {
    const px = src[i][0] - mx, py = src[i][1] - my;
    const ux = dst[i][0] - qx, uy = dst[i][1] - qy;
    sxx += px * px + py * py;
    num1 += px * ux + py * uy;
    num2 += px * uy - py * ux;
  }
  if (!(sxx > 1e-9)) {
    throw new ImageError("invalid_request", "landmarks are degenerate (all points coincide)");
  }
  const a = num1 / sxx, b = num2 / sxx;
  return [a, -b, qx - (a * mx - b * my), b, a, qy - (b * mx + a * my)];
}

/** Inverse of an affine map. */
export function invertAffine(m: Affine): Affine {
  const [a, b, tx, c, d, ty] = m;
  const det = a * d - b * c;
  if (!(Math.abs(det) > 1e-12)) {
    throw new ImageError("invalid_request", "landmarks give a singular transform");
  }
  const ia = d / det, ib = -b / det, ic = -c / det, id = a / det;
  return [ia, ib, -(ia * tx + ib * ty), ic, id, -(ic * tx + id * ty)];
}

/**
 * The template in `outW × outH` crop pixels: the model's own (`unit`: the five points as fractions of
 * the crop, from its bundle meta `align.template`) or the ArcFace one scaled to the crop.
 */
export function templateFor(outW: number, outH: number, unit?: readonly Point[]): Point[] {
  if (unit) return unit.map(([x, y]) => [x * outW, y * outH]);
  return FACE_TEMPLATE_112.map(([x, y]) => [(x * outW) / 112, (y * outH) / 112]);
}

/**
 * The part of the image the aligned crop reads (upright pixels, with a margin for the filters), and the
 * crop's resolution there (output px per source px). Callers decode this region at ≥ that resolution.
 */
export function alignFootprint(
  landmarks: readonly Point[],
  outW: number,
  outH: number,
  template?: readonly Point[],
): { box: Box; scale: number } {
  if (landmarks.length !== 5) throw new ImageError("invalid_request", "landmarks must be exactly 5 points");
  const m = fitSimilarity(landmarks, templateFor(outW, outH, template));
  const scale = Math.sqrt(m[0] * m[0] + m[3] * m[3]);
  const inv = invertAffine(m);
  const xs: number[] = [], ys: number[] = [];
  for (const [x, y] of [[0, 0], [outW, 0], [0, outH], [outW, outH]]) {
    xs.push(inv[0] * x + inv[1] * y + inv[2]);
    ys.push(inv[3] * x + inv[4] * y + inv[5]);
  }
  const pad = 2 / Math.min(scale, 1);
  const x0 = Math.floor(Math.min(...xs) - pad), y0 = Math.floor(Math.min(...ys) - pad);
  const x1 = Math.ceil(Math.max(...xs) + pad), y1 = Math.ceil(Math.max(...ys) + pad);
  return { box: { x: x0, y: y0, w: x1 - x0, h: y1 - y0 }, scale };
}

/**
 * Warp the face given by 5 landmarks (pixels of `img`) into an `outW × outH` crop with `c` channels
 * (`template`: the model's own five points as fractions of the crop; default ArcFace's).
 * The region the crop covers is first resampled with the antialiased filter to about the crop's
 * resolution (never up), so the bilinear warp never skips source pixels.
 */
export function alignFace(
  img: RgbImage,
  landmarks: readonly Point[],
  outW: number,
  outH: number,
  c: 1 | 3,
  template?: readonly Point[],
): Planar {
  const { box, scale } = alignFootprint(landmarks, outW, outH, template);
  let m = fitSimilarity(landmarks, templateFor(outW, outH, template));
  const x0 = Math.max(0, box.x), y0 = Math.max(0, box.y);
  const x1 = Math.min(img.width, box.x + box.w), y1 = Math.min(img.height, box.y + box.h);
  if (x1 - x0 < 1 || y1 - y0 < 1) return { c, h: outH, w: outW, data: new Float32Array(c * outH * outW) };
  const k = scale < 0.8 ? scale : 1;
  const nw = Math.max(1, Math.ceil((x1 - x0) * k)), nh = Math.max(1, Math.ceil((y1 - y0) * k));
  const src = resize(img, { x: x0, y: y0, w: x1 - x0, h: y1 - y0 }, nw, nh, c);
  // Source point p = (x0, y0) + p' ⊙ (1/kx, 1/ky); fold that into m.
  const kx = nw / (x1 - x0), ky = nh / (y1 - y0);
  const [a, b, tx, cc, d, ty] = m;
  m = [a / kx, b / ky, a * x0 + b * y0 + tx, cc / kx, d / ky, cc * x0 + d * y0 + ty];
  return warpAffine(src, invertAffine(m), outW, outH);
}
