/**
 * Five-point face alignment: a least-squares similarity transform (Umeyama 1991, no reflection)
 * from the client's landmarks to the canonical ArcFace template, then an antialiased warp into the
 * model's crop.
 */
import { ApiError } from "./errors.ts";
import { type Planar, resize, warpAffine } from "./image.ts";

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
  if (!(sxx > 1e-9)) throw new ApiError("invalid_request", "landmarks are degenerate (all points coincide)");
  const a = num1 / sxx, b = num2 / sxx;
  return [a, -b, qx - (a * mx - b * my), b, a, qy - (b * mx + a * my)];
}

/** Inverse of an affine map. */
export function invertAffine(m: Affine): Affine {
  const [a, b, tx, c, d, ty] = m;
  const det = a * d - b * c;
  if (!(Math.abs(det) > 1e-12)) throw new ApiError("invalid_request", "landmarks give a singular transform");
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
 * Warp the face given by 5 landmarks into an `outW × outH` crop (`template`: the model's own five
 * points as fractions of the crop; default ArcFace's). When the face is larger than the
 * crop, the region it covers is first downscaled with the antialiased resampler, so the bilinear
 * warp never skips source pixels.
 */
export function alignFace(
  img: Planar,
  landmarks: readonly Point[],
  outW: number,
  outH: number,
  template?: readonly Point[],
): Planar {
  if (landmarks.length !== 5) throw new ApiError("invalid_request", "landmarks must be exactly 5 points");
  let m = fitSimilarity(landmarks, templateFor(outW, outH, template));
  let src = img;
  const scale = Math.sqrt(m[0] * m[0] + m[3] * m[3]); // output px per source px
  if (scale < 0.8) {
    const inv = invertAffine(m);
    const xs: number[] = [], ys: number[] = [];
    for (const [x, y] of [[0, 0], [outW, 0], [0, outH], [outW, outH]]) {
      xs.push(inv[0] * x + inv[1] * y + inv[2]);
      ys.push(inv[3] * x + inv[4] * y + inv[5]);
    }
    const pad = 2 / scale;
    const x0 = Math.max(0, Math.floor(Math.min(...xs) - pad)),
      y0 = Math.max(0, Math.floor(Math.min(...ys) - pad));
    const x1 = Math.min(img.w, Math.ceil(Math.max(...xs) + pad)),
      y1 = Math.min(img.h, Math.ceil(Math.max(...ys) + pad));
    if (x1 - x0 >= 2 && y1 - y0 >= 2) {
      const nw = Math.max(2, Math.ceil((x1 - x0) * scale)), nh = Math.max(2, Math.ceil((y1 - y0) * scale));
      src = resize(img, { x: x0, y: y0, w: x1 - x0, h: y1 - y0 }, nw, nh);
      // Source point p = (x0, y0) + p' ⊙ (1/kx, 1/ky); fold that into m.
      const kx = nw / (x1 - x0), ky = nh / (y1 - y0);
      const [a, b, tx, c, d, ty] = m;
      m = [a / kx, b / ky, a * x0 + b * y0 + tx, c / kx, d / ky, c * x0 + d * y0 + ty];
    }
  }
  return warpAffine(src, invertAffine(m), outW, outH);
}
