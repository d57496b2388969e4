/**
 * Image intake: format sniffing, header checks, and decoding at the size the caller needs. A JPEG is
 * decoded to its quantised DCT coefficients once ({@link openImage}); any number of renders then
 * produce the whole image at 1/8 … 1 scale (for a detector) or a region at a finer scale (for the
 * face crop) without a full-resolution pixel buffer. PNG has no such scaling: each render inflates
 * the file again, streaming rows into a box-averaged output (its decode cost is bounded up front).
 * All coordinates in this API are upright (EXIF orientation applied) full-resolution pixels.
 */
import { imageSize } from "image-size";
import { ImageError } from "../errors.ts";
import { exifOrientation } from "./exif.ts";
import {
  canStream,
  checkDataPresent,
  type JpegFile,
  parseJpeg,
  renderJpeg,
  type RowSource,
  storedRows,
  streamedRows,
} from "./jpeg.ts";
import { orient, type Rect, rectToStored, rectToUpright, type RgbImage, uprightSize } from "./orient.ts";
import type { Box } from "./resample.ts";
import { checkPngBudget, parsePng, type PngInfo, renderPng } from "./png.ts";

/** Default pixel cap (declared width × height): 40 megapixels. */
export const DEFAULT_MAX_PIXELS = 40_000_000;

/** Decode scales: libjpeg's DCT scaling factors. */
export type Scale = 1 | 0.5 | 0.25 | 0.125;
const SCALES: Scale[] = [0.125, 0.25, 0.5, 1];

/**
 * Memory a progressive (or multi-scan) JPEG may take for its stored coefficients: 48 MiB, i.e. 16 MP
 * of 4:2:0 or 8 MP of 4:4:4. Baseline JPEGs stream row by row and need no such store.
 */
export const DEFAULT_MAX_COEFFICIENT_BYTES = 48 * 2 ** 20;

/** Options of {@link openImage}. */
export interface OpenOptions {
  /** Refuse images whose header declares more pixels than this (`image_too_large`). Default 40 MP. */
  maxPixels?: number;
  /** Refuse progressive JPEGs whose coefficients need more bytes (`image_too_large`). Default 48 MiB. */
  maxCoefficientBytes?: number;
}

/** How large a render should be: an explicit scale, or the smallest scale reaching a size. */
export interface ScaleOptions {
  /** Exact decode scale (1, 1/2, 1/4, 1/8). Wins over `targetShortSide`. */
  scale?: Scale;
  /** Smallest scale whose short side (of the rendered area) is at least this many pixels. */
  targetShortSide?: number;
}

/** Pixels of the whole image or of a region, at `scale`. */
export interface DecodedImage {
  /** Upright full-resolution width of the whole image. */
  width: number;
  /** Upright full-resolution height of the whole image. */
  height: number;
  /** Decode scale: one output pixel spans 1/scale full-resolution pixels. */
  scale: Scale;
  /**
   * Where `pixels` sits, in full-resolution upright pixels × `scale`: a full-resolution point P is at
   * (P.x·scale − x, P.y·scale − y) in `pixels` (pixel i spans [i, i+1)). Integers, and (0, 0) for a
   * whole-image decode, except along a flipped axis (EXIF 2–8) whose length is not a multiple of
   * 1/scale, where the grid starts a fraction of a pixel early.
   */
  x: number;
  /** See `x`. */
  y: number;
  /** Upright 8-bit RGB. */
  pixels: RgbImage;
}

/** An opened image: header read, JPEG coefficients decoded; renders on demand. */
export interface ImageSource {
  /** Container format. */
  format: "jpeg" | "png";
  /** Upright full-resolution width. */
  width: number;
  /** Upright full-resolution height. */
  height: number;
  /** EXIF orientation applied (1..8; 1 for PNG and when EXIF is absent or broken). */
  orientation: number;
  /** 1 when the image is stored as greyscale (a 1-component JPEG, a grey PNG), else 3. */
  channels: 1 | 3;
  /** The whole image at the chosen scale. */
  decode(opts?: ScaleOptions): Promise<DecodedImage>;
  /**
   * The region `box` (upright full-resolution pixels; clipped to the image) at the chosen scale;
   * `targetShortSide` refers to the region's short side. The result covers at least the box.
   */
  decodeRegion(box: Box, opts?: ScaleOptions): Promise<DecodedImage>;
}

const isJpeg = (b: Uint8Array) => b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
const isPng = (b: Uint8Array) =>
  b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 && b[4] === 0x0d &&
  b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a;

function sniffFailure(bytes: Uint8Array): ImageError {
  if (bytes.length === 0) return new ImageError("invalid_image", "image is empty");
  let other: string | undefined;
  try {
    other = imageSize(bytes).type;
  } catch { /* not a known format */ }
  if (other) {
    return new ImageError(
      "unsupported_media_type",
      `image format '${other}' is not supported; send JPEG or PNG`,
    );
  }
  return new ImageError("invalid_image", "bytes are not a JPEG or PNG image");
}

function checkPixels(w: number, h: number, maxPixels: number): void {
  if (w * h > maxPixels) {
    throw new ImageError(
      "image_too_large",
      `image is ${w}×${h} = ${(w * h / 1e6).toFixed(1)} MP; the limit is ${
        (maxPixels / 1e6).toFixed(1)
      } MP. Downscale it on the device before upload`,
    );
  }
}

/** Smallest scale at which `shortSide · scale ≥ target` (1 when even full size is smaller). */
export function pickScale(shortSide: number, opts?: ScaleOptions): Scale {
  if (opts?.scale !== undefined) {
    if (!SCALES.includes(opts.scale)) {
      throw new ImageError("invalid_image", "scale must be 1, 1/2, 1/4 or 1/8");
    }
    return opts.scale;
  }
  const t = opts?.targetShortSide;
  if (t === undefined || !(t > 0)) return 1;
  return SCALES.find((s) => shortSide * s >= t) ?? 1;
}

/**
 * Open an image: sniff the format, check the declared size against `maxPixels` and the data really
 * present, and read EXIF orientation (ignored when broken). A baseline JPEG is then decoded row by row
 * at each render (entropy-decoder checkpoints per MCU row, so a region render restarts near its first
 * row); a progressive one is decoded here into stored coefficients (3 bytes per pixel of 4:2:0, bounded
 * by `maxCoefficientBytes`). Full-resolution pixels are never made unless a render asks for scale 1.
 * Bad input throws {@link ImageError} with a neutral message.
 */
export async function openImage(bytes: Uint8Array, opts: OpenOptions = {}): Promise<ImageSource> {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (isJpeg(bytes)) {
    return await openJpeg(bytes, maxPixels, opts.maxCoefficientBytes ?? DEFAULT_MAX_COEFFICIENT_BYTES);
  }
  if (isPng(bytes)) return openPng(bytes, maxPixels);
  throw sniffFailure(bytes);
}

/** Header facts of an image, read without decoding pixels. */
export interface ImageInfo {
  format: "jpeg" | "png";
  /** Upright full-resolution size. */
  width: number;
  height: number;
  orientation: number;
  channels: 1 | 3;
}

/**
 * Format, upright size, orientation and colour of an image from its structure only (no entropy
 * decoding or inflating); checks `maxPixels` and, for JPEG, that the data present can fill the frame.
 */
export function probeImage(bytes: Uint8Array, opts: OpenOptions = {}): ImageInfo {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  let w: number, h: number, o = 1, channels: 1 | 3, format: "jpeg" | "png";
  if (isJpeg(bytes)) {
    let f: JpegFile;
    try {
      f = parseJpeg(bytes);
    } catch (e) {
      throw asImageError(e, "JPEG");
    }
    checkPixels(f.width, f.height, maxPixels);
    try {
      checkDataPresent(f);
    } catch (e) {
      throw asImageError(e, "JPEG");
    }
    format = "jpeg", w = f.width, h = f.height, o = exifOrientation(f.exif);
    channels = f.comps.length === 1 ? 1 : 3;
  } else if (isPng(bytes)) {
    let info: PngInfo;
    try {
      info = parsePng(bytes);
    } catch (e) {
      throw asImageError(e, "PNG");
    }
    format = "png", w = info.width, h = info.height, channels = info.channels <= 2 ? 1 : 3;
    if (info.colorType === 3) channels = 3;
  } else throw sniffFailure(bytes);
  checkPixels(w, h, maxPixels);
  const [width, height] = uprightSize(o, w, h);
  return { format, width, height, orientation: o, channels };
}

type Renderer = (
  rect: Rect,
  denom: 1 | 2 | 4 | 8,
) => Promise<{ x: number; y: number; width: number; height: number; rgb: Uint8Array }>;

/** The source API over one renderer working in stored coordinates. */
function makeSource(
  format: "jpeg" | "png",
  sw: number,
  sh: number,
  o: number,
  channels: 1 | 3,
  render: Renderer,
): ImageSource {
  const [width, height] = uprightSize(o, sw, sh);
  // Renders share the decoder's state (the row-streaming JPEG reader): one at a time.
  let queue: Promise<unknown> = Promise.resolve();
  const run = (box: Rect, scale: Scale): Promise<DecodedImage> => {
    const p = queue.then(() => runOne(box, scale));
    queue = p.catch(() => {});
    return p;
  };
  const runOne = async (box: Rect, scale: Scale): Promise<DecodedImage> => {
    const denom = (1 / scale) as 1 | 2 | 4 | 8;
    const stored = rectToStored(o, sw, sh, box);
    const r = await render(stored, denom);
    const pixels = orient({ width: r.width, height: r.height, data: r.rgb }, o);
    // Where the region's top-left corner lies in upright full-resolution pixels: its stored rectangle
    // (whole output pixels of 1/scale each) mapped through the orientation. Flipped axes whose length is
    // not a multiple of 1/scale start at a fraction of a pixel, which this keeps exact.
    const up = rectToUpright(o, sw, sh, {
      x0: r.x * denom,
      y0: r.y * denom,
      x1: (r.x + r.width) * denom,
      y1: (r.y + r.height) * denom,
    });
    return { width, height, scale, x: up.x0 * scale, y: up.y0 * scale, pixels };
  };
  return {
    format,
    width,
    height,
    orientation: o,
    channels,
    decode: (opts) => run({ x0: 0, y0: 0, x1: width, y1: height }, pickScale(Math.min(width, height), opts)),
    decodeRegion: (box, opts) => {
      const x0 = Math.max(0, Math.floor(box.x)), y0 = Math.max(0, Math.floor(box.y));
      const x1 = Math.min(width, Math.ceil(box.x + box.w)), y1 = Math.min(height, Math.ceil(box.y + box.h));
      if (!(x1 > x0 && y1 > y0)) throw new ImageError("invalid_image", "region lies outside the image");
      return run({ x0, y0, x1, y1 }, pickScale(Math.min(x1 - x0, y1 - y0), opts));
    },
  };
}

async function openJpeg(
  bytes: Uint8Array,
  maxPixels: number,
  maxCoefficientBytes: number,
): Promise<ImageSource> {
  let f: JpegFile;
  try {
    f = parseJpeg(bytes);
  } catch (e) {
    throw asImageError(e, "JPEG");
  }
  checkPixels(f.width, f.height, maxPixels);
  const stream = canStream(f);
  if (!stream) {
    const need = f.comps.reduce((n, c) => n + c.bx * c.by * 128, 0);
    if (need > maxCoefficientBytes) {
      throw new ImageError(
        "image_too_large",
        `this progressive JPEG needs ${(need / 2 ** 20).toFixed(0)} MiB to decode; the limit is ${
          (maxCoefficientBytes / 2 ** 20).toFixed(0)
        } MiB. Send a baseline JPEG or a smaller image`,
      );
    }
  }
  let rows: RowSource;
  try {
    checkDataPresent(f);
    rows = stream ? streamedRows(bytes, f) : await storedRows(bytes, f);
  } catch (e) {
    throw asImageError(e, "JPEG");
  }
  const render: Renderer = async (rect, denom) => {
    try {
      return await renderJpeg(f, rows, rect, denom);
    } catch (e) {
      throw asImageError(e, "JPEG");
    }
  };
  return makeSource("jpeg", f.width, f.height, exifOrientation(f.exif), f.comps.length === 1 ? 1 : 3, render);
}

function openPng(bytes: Uint8Array, maxPixels: number): ImageSource {
  let info: PngInfo;
  try {
    info = parsePng(bytes);
  } catch (e) {
    throw asImageError(e, "PNG");
  }
  checkPixels(info.width, info.height, maxPixels);
  checkPngBudget(info);
  const render: Renderer = async (rect, denom) => {
    try {
      return await renderPng(info, rect, denom);
    } catch (e) {
      throw asImageError(e, "PNG");
    }
  };
  return makeSource(
    "png",
    info.width,
    info.height,
    1,
    info.colorType === 0 || info.colorType === 4 ? 1 : 3,
    render,
  );
}

/** Keep our own typed errors; anything else (a RangeError from a hostile file) becomes a neutral message. */
function asImageError(e: unknown, format: string): ImageError {
  if (e instanceof ImageError) return e;
  return new ImageError("invalid_image", `${format} data is corrupt`);
}

/**
 * Decode a whole JPEG or PNG to upright RGB at the smallest scale meeting `targetShortSide` (or at
 * `scale`; default full size). Shorthand for `openImage(bytes).decode(opts)`.
 */
export async function decodeImage(
  bytes: Uint8Array,
  opts: OpenOptions & ScaleOptions = {},
): Promise<DecodedImage> {
  return await (await openImage(bytes, opts)).decode(opts);
}
