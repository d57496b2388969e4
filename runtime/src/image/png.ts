/**
 * Streaming PNG decoder: chunks are CRC-checked, IDAT is inflated in small pieces (fflate), rows are
 * unfiltered one at a time and box-averaged straight into the output at 1/`denom` scale, so memory is
 * a few rows plus the (scaled) output, never the raw image. PNG has no DCT, so a scaled decode still
 * inflates every byte: {@link checkPngBudget} bounds that work before it starts.
 */
import { Unzlib } from "fflate";
import { ImageError } from "../errors.ts";
import type { Rect } from "./orient.ts";
import { maybeYield } from "./yield.ts";

/** Header facts of a PNG. */
export interface PngInfo {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  interlaced: boolean;
  /** Samples per pixel (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA, 1 palette index). */
  channels: number;
  palette: Uint8Array | null;
  /** IDAT payload slices, in order. */
  idat: Uint8Array[];
  idatBytes: number;
  /** Inflated size the header implies (filter bytes included). */
  rawBytes: number;
}

const invalid = (what: string) => new ImageError("invalid_image", `PNG data is corrupt (${what})`);

const CRC = new Int32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  CRC[n] = c;
}

function crc32(d: Uint8Array, s: number, e: number): number {
  let c = -1;
  for (let i = s; i < e; i++) c = CRC[(c ^ d[i]) & 255] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const DEPTHS: Record<number, number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};

/** Walk the chunks (checking every CRC) and collect what decoding needs. */
export function parsePng(d: Uint8Array): PngInfo {
  let p = 8;
  let info: PngInfo | null = null;
  const dv = new DataView(d.buffer, d.byteOffset, d.byteLength);
  let ended = false;
  while (p + 12 <= d.length) {
    const len = dv.getUint32(p);
    const type = String.fromCharCode(d[p + 4], d[p + 5], d[p + 6], d[p + 7]);
    if (len > d.length - p - 12) throw invalid(`${type} chunk runs past the end of the file`);
    const s = p + 8, e = s + len;
    if (crc32(d, p + 4, e) !== dv.getUint32(e)) throw invalid(`bad CRC in ${type}`);
    if (!info && type !== "IHDR") throw invalid("IHDR is not the first chunk");
    if (type === "IHDR") {
      if (info || len !== 13) throw invalid("IHDR");
      const width = dv.getUint32(s), height = dv.getUint32(s + 4), depth = d[s + 8], colorType = d[s + 9];
      if (!width || !height || width > 2 ** 31 - 1 || height > 2 ** 31 - 1) {
        throw invalid("zero or huge size");
      }
      if (!DEPTHS[colorType]?.includes(depth) || d[s + 10] !== 0 || d[s + 11] !== 0 || d[s + 12] > 1) {
        throw invalid("IHDR fields");
      }
      const channels = CHANNELS[colorType];
      const rowBytes = Math.ceil((width * channels * depth) / 8);
      info = {
        width,
        height,
        depth,
        colorType,
        interlaced: d[s + 12] === 1,
        channels,
        palette: null,
        idat: [],
        idatBytes: 0,
        rawBytes: height * (rowBytes + 1),
      };
    } else if (type === "PLTE") {
      if (len % 3 || len === 0 || len > 768) throw invalid("PLTE");
      info!.palette = d.subarray(s, e);
    } else if (type === "IDAT") {
      info!.idat.push(d.subarray(s, e));
      info!.idatBytes += len;
    } else if (type === "IEND") {
      ended = true;
      break;
    }
    p = e + 4;
  }
  if (!info) throw invalid("no IHDR");
  if (info.colorType === 3 && !info.palette) throw invalid("palette image without PLTE");
  if (!info.idatBytes) throw invalid("no image data");
  void ended; // a missing IEND is tolerated when the data is complete (checked while decoding)
  return info;
}

/** Largest inflated size a PNG may declare (filter bytes included): 64 MiB. */
export const PNG_MAX_RAW_BYTES = 64 * 2 ** 20;
/** Largest inflated / compressed ratio accepted above 1 MiB of raw data (photos: 2–3×, flat graphics: < 100×). */
export const PNG_MAX_RATIO = 256;

/**
 * Refuse, before inflating anything, PNGs whose decode would cost more than a bounded amount:
 * raw data over {@link PNG_MAX_RAW_BYTES} or expanding more than {@link PNG_MAX_RATIO}× (a deflate bomb).
 */
export function checkPngBudget(info: PngInfo): void {
  if (info.rawBytes > PNG_MAX_RAW_BYTES) {
    throw new ImageError(
      "image_too_large",
      `this PNG holds ${(info.rawBytes / 2 ** 20).toFixed(0)} MiB of raw pixel data; the limit is ${
        PNG_MAX_RAW_BYTES / 2 ** 20
      } MiB. Send a JPEG or a smaller image`,
    );
  }
  if (info.rawBytes > 2 ** 20 && info.rawBytes > PNG_MAX_RATIO * info.idatBytes) {
    throw new ImageError(
      "image_too_large",
      `this PNG expands ${
        (info.rawBytes / info.idatBytes).toFixed(0)
      }× when decompressed (limit ${PNG_MAX_RATIO}×)`,
    );
  }
}

const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

/**
 * Decode the stored rectangle `rect` at 1/`denom` scale (box average of denom × denom pixels; the output
 * grid is the same as the JPEG decoder's: ceil(W/denom) × ceil(H/denom)). Returns the region and its
 * origin in scaled pixels. Alpha is dropped, 16-bit samples are rounded to 8 bits, grey is expanded.
 */
export async function renderPng(
  info: PngInfo,
  rect: Rect,
  denom: number,
): Promise<{ x: number; y: number; width: number; height: number; rgb: Uint8Array }> {
  const { width: W, height: H, channels: ch, depth, palette } = info;
  const ox0 = Math.floor(rect.x0 / denom), oy0 = Math.floor(rect.y0 / denom);
  const ox1 = Math.min(Math.ceil(W / denom), Math.ceil(rect.x1 / denom));
  const oy1 = Math.min(Math.ceil(H / denom), Math.ceil(rect.y1 / denom));
  const ow = Math.max(0, ox1 - ox0), oh = Math.max(0, oy1 - oy0);
  // Sums per output sample: Uint16 holds 64 × 255 (denom ≤ 8) and Uint8 when nothing is summed.
  const acc = denom === 1 ? new Uint8Array(ow * oh * 3) : new Uint16Array(ow * oh * 3);
  const bpp = Math.max(1, (ch * depth) >> 3); // filter unit in bytes
  const max = (1 << depth) - 1;
  const grey = ch <= 2;
  // One stored pixel (row buffer `row`, pixel index i) → 8-bit R, G, B added at output cell (cx, cy).
  const sample = (row: Uint8Array, i: number, out: number) => {
    let r: number, g: number, b: number;
    if (depth < 8) {
      const bit = i * depth, v = (row[bit >> 3] >> (8 - depth - (bit & 7))) & max;
      if (palette) {
        if (v * 3 + 2 >= palette.length) throw invalid("palette index out of range");
        r = palette[v * 3], g = palette[v * 3 + 1], b = palette[v * 3 + 2];
      } else r = g = b = Math.round((v * 255) / max);
    } else if (depth === 8) {
      const o = i * ch;
      if (palette) {
        const v = row[o];
        if (v * 3 + 2 >= palette.length) throw invalid("palette index out of range");
        r = palette[v * 3], g = palette[v * 3 + 1], b = palette[v * 3 + 2];
      } else if (grey) r = g = b = row[o];
      else r = row[o], g = row[o + 1], b = row[o + 2];
    } else {
      const o = i * ch * 2;
      const s16 = (k: number) => Math.round(((row[o + 2 * k] << 8) | row[o + 2 * k + 1]) / 257);
      if (grey) r = g = b = s16(0);
      else r = s16(0), g = s16(1), b = s16(2);
    }
    acc[out] += r, acc[out + 1] += g, acc[out + 2] += b;
  };
  const passes = info.interlaced ? ADAM7 : [[0, 0, 1, 1]];
  // Geometry of every pass, then one inflate stream feeding rows pass after pass.
  const geo = passes.map(([x0, y0, dx, dy]) => {
    const pw = W > x0 ? Math.ceil((W - x0) / dx) : 0, ph = H > y0 ? Math.ceil((H - y0) / dy) : 0;
    return { x0, y0, dx, dy, pw, ph, rowBytes: Math.ceil((pw * ch * depth) / 8) };
  }).filter((g) => g.pw > 0 && g.ph > 0);
  let gi = 0, py = 0;
  let cur = new Uint8Array(geo[0].rowBytes + 1), prev = new Uint8Array(geo[0].rowBytes + 1);
  let fill = 0, done = false;
  const onRow = () => {
    const g = geo[gi];
    unfilter(cur, prev, g.rowBytes, bpp);
    const sy = g.y0 + py * g.dy, cy = Math.floor(sy / denom) - oy0;
    if (cy >= 0 && cy < oh) {
      const row = cur.subarray(1);
      for (let px = 0; px < g.pw; px++) {
        const cx = Math.floor((g.x0 + px * g.dx) / denom) - ox0;
        if (cx >= 0 && cx < ow) sample(row, px, (cy * ow + cx) * 3);
      }
    }
    [cur, prev] = [prev, cur];
    if (++py === g.ph) {
      py = 0;
      if (++gi === geo.length) done = true;
      else cur = new Uint8Array(geo[gi].rowBytes + 1), prev = new Uint8Array(geo[gi].rowBytes + 1);
    }
    fill = 0;
  };
  const z = new Unzlib((chunk) => {
    let i = 0;
    while (i < chunk.length && !done) {
      const need = geo[gi].rowBytes + 1 - fill, take = Math.min(need, chunk.length - i);
      cur.set(chunk.subarray(i, i + take), fill);
      fill += take, i += take;
      if (fill === geo[gi].rowBytes + 1) onRow();
    }
  });
  try {
    for (let k = 0; k < info.idat.length; k++) {
      const part = info.idat[k];
      for (let o = 0; o < part.length; o += 8192) {
        z.push(
          part.subarray(o, Math.min(part.length, o + 8192)),
          k === info.idat.length - 1 && o + 8192 >= part.length,
        );
        if (done) break;
        await maybeYield();
      }
      if (done) break;
    }
  } catch (e) {
    if (e instanceof ImageError) throw e;
    throw invalid("compressed data");
  }
  if (!done) throw invalid("image data is shorter than the image");
  return { x: ox0, y: oy0, width: ow, height: oh, rgb: average(acc, ow, oh, ox0, oy0, W, H, denom) };
}

/** Divide the sums by the number of stored pixels in each output cell (edge cells hold fewer). */
function average(
  acc: Uint8Array | Uint16Array,
  ow: number,
  oh: number,
  ox0: number,
  oy0: number,
  W: number,
  H: number,
  denom: number,
): Uint8Array {
  if (acc instanceof Uint8Array) return acc;
  const out = new Uint8Array(acc.length);
  for (let y = 0; y < oh; y++) {
    const sy = (oy0 + y) * denom, ny = Math.min(denom, H - sy);
    for (let x = 0; x < ow; x++) {
      const sx = (ox0 + x) * denom, n = Math.min(denom, W - sx) * ny, o = (y * ow + x) * 3;
      out[o] = Math.round(acc[o] / n),
        out[o + 1] = Math.round(acc[o + 1] / n),
        out[o + 2] = Math.round(acc[o + 2] / n);
    }
  }
  return out;
}

/** Undo the PNG filter of one row in place (`cur[0]` is the filter type, `prev` the previous unfiltered row). */
function unfilter(cur: Uint8Array, prev: Uint8Array, n: number, bpp: number): void {
  const t = cur[0];
  const r = cur.subarray(1), p = prev.subarray(1);
  switch (t) {
    case 0:
      return;
    case 1:
      for (let i = bpp; i < n; i++) r[i] = (r[i] + r[i - bpp]) & 255;
      return;
    case 2:
      for (let i = 0; i < n; i++) r[i] = (r[i] + p[i]) & 255;
      return;
    case 3:
      for (let i = 0; i < n; i++) r[i] = (r[i] + ((i >= bpp ? r[i - bpp] : 0) + p[i] >> 1)) & 255;
      return;
    case 4:
      for (let i = 0; i < n; i++) {
        const a = i >= bpp ? r[i - bpp] : 0, b = p[i], c = i >= bpp ? p[i - bpp] : 0;
        const pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);
        r[i] = (r[i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)) & 255;
      }
      return;
    default:
      throw invalid("unknown row filter");
  }
}
