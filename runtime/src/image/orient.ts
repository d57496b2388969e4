/**
 * EXIF orientation (1..8) as geometry: pixel rotation/flip of an RGB image, and mapping of
 * rectangles between stored and upright coordinates (continuous pixel coordinates, end-exclusive).
 */

/** Interleaved 8-bit RGB image. */
export interface RgbImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `width·height·3` bytes, row-major R, G, B. */
  data: Uint8Array;
}

/** A rectangle (x0, y0) … (x1, y1), end-exclusive. */
export interface Rect {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** Upright size of a stored `w × h` image under orientation `o`. */
export function uprightSize(o: number, w: number, h: number): [number, number] {
  return o >= 5 ? [h, w] : [w, h];
}

/** Stored point → upright point, for a stored image of size `w × h`. */
function toUpright(o: number, w: number, h: number, x: number, y: number): [number, number] {
  switch (o) {
    case 2:
      return [w - x, y];
    case 3:
      return [w - x, h - y];
    case 4:
      return [x, h - y];
    case 5:
      return [y, x];
    case 6:
      return [h - y, x];
    case 7:
      return [h - y, w - x];
    case 8:
      return [y, w - x];
    default:
      return [x, y];
  }
}

/** Upright point → stored point (inverse of {@link toUpright}). */
function toStored(o: number, w: number, h: number, x: number, y: number): [number, number] {
  switch (o) {
    case 2:
      return [w - x, y];
    case 3:
      return [w - x, h - y];
    case 4:
      return [x, h - y];
    case 5:
      return [y, x];
    case 6:
      return [y, h - x];
    case 7:
      return [w - y, h - x];
    case 8:
      return [w - y, x];
    default:
      return [x, y];
  }
}

function mapRect(f: (x: number, y: number) => [number, number], r: Rect): Rect {
  const [ax, ay] = f(r.x0, r.y0), [bx, by] = f(r.x1, r.y1);
  return { x0: Math.min(ax, bx), y0: Math.min(ay, by), x1: Math.max(ax, bx), y1: Math.max(ay, by) };
}

/** Upright rectangle → stored rectangle (stored image `w × h`). */
export function rectToStored(o: number, w: number, h: number, r: Rect): Rect {
  return mapRect((x, y) => toStored(o, w, h, x, y), r);
}

/** Stored rectangle → upright rectangle (stored image `w × h`). */
export function rectToUpright(o: number, w: number, h: number, r: Rect): Rect {
  return mapRect((x, y) => toUpright(o, w, h, x, y), r);
}

/** Apply an EXIF orientation (1..8) to pixels so the result is upright. */
export function orient(img: RgbImage, o: number): RgbImage {
  if (o < 2 || o > 8) return img;
  const { width: W, height: H, data } = img;
  const [w, h] = uprightSize(o, W, H);
  const out = new Uint8Array(data.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      // Stored pixel shown at upright (x, y): the inverse map applied to the pixel's centre.
      const [sxf, syf] = toStored(o, W, H, x + 0.5, y + 0.5);
      const si = (Math.floor(syf) * W + Math.floor(sxf)) * 3, di = (y * w + x) * 3;
      out[di] = data[si];
      out[di + 1] = data[si + 1];
      out[di + 2] = data[si + 2];
    }
  }
  return { width: w, height: h, data: out };
}
