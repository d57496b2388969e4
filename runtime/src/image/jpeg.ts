/**
 * JPEG decoder with libjpeg-style DCT scaling: blocks are inverse-transformed at 1×1, 2×2, 4×4 or 8×8
 * (scale 1/8 … 1), so a 12 MP photo is decoded for a 256 px detector without ever making a
 * full-resolution buffer, and a face region is rendered again from the same coefficients at a finer
 * scale. Baseline and progressive (Huffman), any sampling (4:4:4, 4:2:2, 4:2:0, …), greyscale, RGB,
 * YCbCr, CMYK and YCCK (Adobe). Not supported: arithmetic coding, lossless and 12-bit JPEG.
 *
 * Written here rather than taken from a library: jpeg-js (the previous decoder) always decodes at full
 * size and keeps several full-size buffers; the wasm decoders on npm (mozjpeg/libjpeg-turbo builds)
 * expose no DCT scaling and need their wasm compiled at run time unless packaged per platform.
 * See docs/api.md, "Images".
 *
 * Cost is bounded by the bytes present: before any allocation the entropy-coded data must be large
 * enough for the declared number of blocks (every block costs at least one bit), and the number of
 * scans is capped. Work is cut into slices with event-loop yields between them.
 */
import { ImageError } from "../errors.ts";
import { maybeYield } from "./yield.ts";

/** Zig-zag position → natural (row-major) position in an 8×8 block. */
const ZZ = new Uint8Array([
  0,
  1,
  8,
  16,
  9,
  2,
  3,
  10,
  17,
  24,
  32,
  25,
  18,
  11,
  4,
  5,
  12,
  19,
  26,
  33,
  40,
  48,
  41,
  34,
  27,
  20,
  13,
  6,
  7,
  14,
  21,
  28,
  35,
  42,
  49,
  56,
  57,
  50,
  43,
  36,
  29,
  22,
  15,
  23,
  30,
  37,
  44,
  51,
  58,
  59,
  52,
  45,
  38,
  31,
  39,
  46,
  53,
  60,
  61,
  54,
  47,
  55,
  62,
  63,
]);

/** Most scans a file may have (progressive files use ~10; each scan walks every block once). */
const MAX_SCANS = 64;

const corrupt = (what: string) => new ImageError("invalid_image", `JPEG data is corrupt (${what})`);

interface Huffman {
  /** 9-bit lookup: (length << 8) | value, 0 = longer code. */
  lut: Uint16Array;
  /** For code length l: one past the largest code of length l (−1 if none). */
  maxcode: Int32Array;
  /** For length l: index in `vals` of the first code minus that code. */
  delta: Int32Array;
  vals: Uint8Array;
  /** 9-bit lookup for AC codes whose code + magnitude bits fit: (value << 16) | (run << 8) | bits used. */
  fastAc: Int32Array;
}

function buildHuffman(counts: Uint8Array, vals: Uint8Array): Huffman {
  const lut = new Uint16Array(512), maxcode = new Int32Array(18).fill(-1), delta = new Int32Array(18);
  let code = 0, k = 0;
  for (let l = 1; l <= 16; l++) {
    delta[l] = k - code;
    for (let i = 0; i < counts[l - 1]; i++, k++, code++) {
      if (l <= 9) {
        const shift = 9 - l, base = code << shift;
        for (let j = 0; j < 1 << shift; j++) lut[base + j] = (l << 8) | vals[k];
      }
    }
    if (code > 1 << l) throw corrupt("Huffman table");
    maxcode[l] = counts[l - 1] ? code : -1;
    code <<= 1;
  }
  const fastAc = new Int32Array(512);
  for (let i = 0; i < 512; i++) {
    const e = lut[i];
    if (!e) continue;
    const l = e >> 8, rs = e & 255, run = rs >> 4, sz = rs & 15;
    if (sz === 0 || l + sz > 9) continue;
    let v = (i >> (9 - l - sz)) & ((1 << sz) - 1);
    if (v < 1 << (sz - 1)) v += 1 - (1 << sz);
    fastAc[i] = v * 65536 + (run << 8) + l + sz;
  }
  return { lut, maxcode, delta, vals, fastAc };
}

/** One colour component of the frame. */
export interface JpegComponent {
  id: number;
  h: number;
  v: number;
  tq: number;
  /** Quantisation table (natural order), latched at the component's first scan. */
  q: Int32Array | null;
  /** Blocks per line / column, padded to whole MCUs. */
  bx: number;
  by: number;
  /** Blocks really covering the component (non-interleaved scans code only these). */
  cx: number;
  cy: number;
  /** Quantised coefficients, natural order, 64 per block. */
  coefs: Int16Array | null;
}

interface Scan {
  comps: number[];
  dc: (Huffman | null)[];
  ac: (Huffman | null)[];
  ss: number;
  se: number;
  ah: number;
  al: number;
  ri: number;
  start: number;
  end: number;
}

/** Parsed structure of a JPEG file (no pixels yet). */
export interface JpegFile {
  width: number;
  height: number;
  progressive: boolean;
  comps: JpegComponent[];
  hmax: number;
  vmax: number;
  mcusX: number;
  mcusY: number;
  /** Adobe APP14 transform (0 none, 1 YCbCr, 2 YCCK), or −1 without an Adobe marker. */
  adobe: number;
  /** Raw EXIF payload (APP1 after "Exif\0\0"), if any. */
  exif: Uint8Array | null;
  scans: Scan[];
}

/**
 * Walk the marker segments: frame header, tables, scans (byte ranges of their entropy-coded data), EXIF.
 * Throws `invalid_image` on structural damage; allocates nothing in proportion to the declared size.
 */
export function parseJpeg(d: Uint8Array): JpegFile {
  if (d.length < 4 || d[0] !== 0xff || d[1] !== 0xd8) throw corrupt("no SOI marker");
  const qt: (Int32Array | null)[] = [null, null, null, null];
  const dcT: (Huffman | null)[] = [null, null, null, null],
    acT: (Huffman | null)[] = [null, null, null, null];
  let f: JpegFile | null = null;
  let ri = 0, adobe = -1, exif: Uint8Array | null = null;
  const scans: Scan[] = [];
  let p = 2;
  for (;;) {
    // Find the next marker (skip fill bytes and any garbage, as libjpeg does with a warning).
    while (p < d.length && d[p] !== 0xff) p++;
    while (p < d.length && d[p] === 0xff) p++;
    if (p >= d.length) break; // no EOI: tolerated if the scans are complete
    const m = d[p++];
    if (m === 0xd9) break; // EOI
    if (m >= 0xd0 && m <= 0xd7 || m === 0x01) continue; // stray RST / TEM: no length
    if (p + 2 > d.length) throw corrupt("segment header cut off");
    const len = (d[p] << 8) | d[p + 1];
    if (len < 2 || p + len > d.length) throw corrupt("segment length");
    const s = p + 2, e = p + len;
    p = e;
    switch (m) {
      case 0xdb: { // DQT
        let i = s;
        while (i < e) {
          const pq = d[i] >> 4, tq = d[i] & 15;
          i++;
          if (tq > 3 || pq > 1 || i + 64 * (pq + 1) > e) throw corrupt("quantisation table");
          const t = new Int32Array(64);
          for (let k = 0; k < 64; k++) t[ZZ[k]] = pq ? (d[i + 2 * k] << 8) | d[i + 2 * k + 1] : d[i + k];
          i += 64 * (pq + 1);
          qt[tq] = t;
        }
        break;
      }
      case 0xc4: { // DHT
        let i = s;
        while (i < e) {
          const tc = d[i] >> 4, th = d[i] & 15;
          if (tc > 1 || th > 3 || i + 17 > e) throw corrupt("Huffman table");
          const counts = d.subarray(i + 1, i + 17);
          let n = 0;
          for (let k = 0; k < 16; k++) n += counts[k];
          if (n > 256 || i + 17 + n > e) throw corrupt("Huffman table");
          const h = buildHuffman(counts, d.slice(i + 17, i + 17 + n));
          (tc ? acT : dcT)[th] = h;
          i += 17 + n;
        }
        break;
      }
      case 0xdd: // DRI
        if (len < 4) throw corrupt("restart interval");
        ri = (d[s] << 8) | d[s + 1];
        break;
      case 0xc0:
      case 0xc1:
      case 0xc2: {
        if (f) throw corrupt("two frame headers");
        f = parseFrame(d, s, e, m === 0xc2, qt);
        break;
      }
      case 0xc3:
      case 0xc5:
      case 0xc6:
      case 0xc7:
      case 0xc9:
      case 0xca:
      case 0xcb:
      case 0xcd:
      case 0xce:
      case 0xcf:
        throw new ImageError(
          "unsupported_media_type",
          "this JPEG uses lossless, hierarchical or arithmetic coding; send a baseline or progressive JPEG",
        );
      case 0xe1:
        if (
          !exif && len >= 8 && d[s] === 0x45 && d[s + 1] === 0x78 && d[s + 2] === 0x69 && d[s + 3] === 0x66
        ) {
          exif = d.subarray(s + 6, e);
        }
        break;
      case 0xee:
        if (len >= 14 && d[s] === 0x41 && d[s + 1] === 0x64 && d[s + 2] === 0x6f && d[s + 3] === 0x62) {
          adobe = d[s + 11];
        }
        break;
      case 0xda: { // SOS
        if (!f) throw corrupt("scan before frame header");
        const n = d[s];
        if (n < 1 || n > 4 || len < 6 + 2 * n) throw corrupt("scan header");
        const sc: Scan = { comps: [], dc: [], ac: [], ss: 0, se: 0, ah: 0, al: 0, ri, start: 0, end: 0 };
        for (let k = 0; k < n; k++) {
          const ci = f.comps.findIndex((c) => c.id === d[s + 1 + 2 * k]);
          if (ci < 0 || sc.comps.includes(ci)) throw corrupt("scan component");
          const c = f.comps[ci];
          if (!c.q) {
            const q = qt[c.tq];
            if (!q) throw corrupt("missing quantisation table");
            c.q = q.slice();
          }
          sc.comps.push(ci);
          sc.dc.push(dcT[d[s + 2 + 2 * k] >> 4] ?? null);
          sc.ac.push(acT[d[s + 2 + 2 * k] & 15] ?? null);
        }
        const t = s + 1 + 2 * n;
        sc.ss = d[t], sc.se = d[t + 1], sc.ah = d[t + 2] >> 4, sc.al = d[t + 2] & 15;
        if (f.progressive) {
          if (
            sc.ss > sc.se || sc.se > 63 || (sc.ss === 0 && sc.se !== 0) || (sc.ss > 0 && n !== 1) ||
            sc.al > 13
          ) {
            throw corrupt("progressive scan parameters");
          }
        } else {
          sc.ss = 0, sc.se = 63, sc.ah = 0, sc.al = 0;
        }
        const needDc = sc.ss === 0 && sc.ah === 0, needAc = sc.se > 0;
        for (let k = 0; k < n; k++) {
          if ((needDc && !sc.dc[k]) || (needAc && !sc.ac[k])) throw corrupt("missing Huffman table");
        }
        if (n > 1) {
          let blocks = 0;
          for (const ci of sc.comps) blocks += f.comps[ci].h * f.comps[ci].v;
          if (blocks > 10) throw corrupt("too many blocks per MCU");
        }
        // Entropy-coded data runs to the next marker that is not a stuffed 0xFF00 or an RSTn.
        let q = e;
        while (q < d.length) {
          if (d[q] === 0xff && q + 1 < d.length) {
            const nm = d[q + 1];
            if (nm !== 0 && !(nm >= 0xd0 && nm <= 0xd7)) break;
            q += 2;
          } else q++;
        }
        sc.start = e, sc.end = Math.min(q, d.length);
        if (scans.length >= MAX_SCANS) throw corrupt("too many scans");
        scans.push(sc);
        p = sc.end;
        break;
      }
      default:
        break; // APPn, COM, …: skipped
    }
  }
  if (!f) throw corrupt("no frame header");
  if (scans.length === 0) throw corrupt("no image data");
  f.adobe = adobe, f.exif = exif, f.scans = scans;
  return f;
}

function parseFrame(d: Uint8Array, s: number, e: number, progressive: boolean, qt: (Int32Array | null)[]) {
  if (e - s < 6) throw corrupt("frame header");
  if (d[s] !== 8) {
    throw new ImageError("unsupported_media_type", `${d[s]}-bit JPEG is not supported; send an 8-bit JPEG`);
  }
  const height = (d[s + 1] << 8) | d[s + 2], width = (d[s + 3] << 8) | d[s + 4], n = d[s + 5];
  if (!width || !height) throw corrupt("zero size (DNL is not supported)");
  if (![1, 3, 4].includes(n) || e - s < 6 + 3 * n) throw corrupt("component count");
  const comps: JpegComponent[] = [];
  let hmax = 1, vmax = 1;
  for (let k = 0; k < n; k++) {
    const o = s + 6 + 3 * k;
    const h = d[o + 1] >> 4, v = d[o + 1] & 15, tq = d[o + 2];
    if (h < 1 || h > 4 || v < 1 || v > 4 || tq > 3) throw corrupt("component sampling");
    hmax = Math.max(hmax, h), vmax = Math.max(vmax, v);
    comps.push({ id: d[o], h, v, tq, q: null, bx: 0, by: 0, cx: 0, cy: 0, coefs: null });
  }
  void qt;
  const mcusX = Math.ceil(width / (8 * hmax)), mcusY = Math.ceil(height / (8 * vmax));
  for (const c of comps) {
    if (hmax % c.h || vmax % c.v) throw corrupt("sampling factors that do not divide the largest");
    c.bx = mcusX * c.h, c.by = mcusY * c.v;
    c.cx = Math.ceil(Math.ceil((width * c.h) / hmax) / 8);
    c.cy = Math.ceil(Math.ceil((height * c.v) / vmax) / 8);
  }
  return {
    width,
    height,
    progressive,
    comps,
    hmax,
    vmax,
    mcusX,
    mcusY,
    adobe: -1,
    exif: null,
    scans: [],
  } as JpegFile;
}

/**
 * Fail fast on a header that lies: every block of every component costs at least one bit in some scan
 * that carries its DC coefficient, so the entropy-coded bytes present bound the real block count.
 */
export function checkDataPresent(f: JpegFile): void {
  let need = 0;
  for (let ci = 0; ci < f.comps.length; ci++) {
    const dcScans = f.scans.filter((s) => s.ss === 0 && s.ah === 0 && s.comps.includes(ci));
    if (!dcScans.length) throw corrupt("a component has no scan");
    need += f.comps[ci].cx * f.comps[ci].cy;
  }
  let have = 0;
  for (const s of f.scans) if (s.ss === 0 && s.ah === 0) have += s.end - s.start;
  if (have * 8 < need) throw corrupt("the file is truncated or its header claims more pixels than it holds");
}

/**
 * Entropy-coded bytes of one scan with 0xFF00 stuffing removed, cut at restart markers into segments
 * (`segs[i]` … `segs[i + 1]`), so the bit reader's inner loop needs no marker checks.
 */
function unstuff(d: Uint8Array, start: number, end: number): { u: Uint8Array; segs: number[] } {
  const u = new Uint8Array(end - start);
  const segs = [0];
  let n = 0;
  for (let i = start; i < end; i++) {
    const b = d[i];
    if (b !== 0xff) {
      u[n++] = b;
      continue;
    }
    const m = d[i + 1];
    if (m === 0) u[n++] = 0xff, i++;
    else if (m >= 0xd0 && m <= 0xd7) segs.push(n), i++;
    // any other 0xFF: fill byte, skipped
  }
  segs.push(n);
  return { u: u.subarray(0, n), segs };
}

/** Entropy-decoder state: a 32-bit window over one restart segment; zeros are fed past its end. */
class BitReader {
  buf = 0;
  cnt = 0;
  pos: number;
  end: number;
  seg = 0;
  constructor(readonly u: Uint8Array, readonly segs: number[]) {
    this.pos = segs[0];
    this.end = segs[1];
  }

  fill(): void {
    while (this.cnt <= 24) {
      this.buf = ((this.buf << 8) | (this.pos < this.end ? this.u[this.pos] : 0)) >>> 0;
      this.pos++;
      this.cnt += 8;
    }
  }

  bits(n: number): number {
    if (this.cnt < n) this.fill();
    this.cnt -= n;
    return (this.buf >>> this.cnt) & ((1 << n) - 1);
  }

  bit(): number {
    if (this.cnt < 1) this.fill();
    this.cnt--;
    return (this.buf >>> this.cnt) & 1;
  }

  /** Read `n` bits and sign-extend as JPEG's EXTEND. */
  extend(n: number): number {
    if (n === 0) return 0;
    const v = this.bits(n);
    return v < 1 << (n - 1) ? v - (1 << n) + 1 : v;
  }

  decode(h: Huffman): number {
    if (this.cnt < 16) this.fill();
    const e = h.lut[(this.buf >>> (this.cnt - 9)) & 511];
    if (e) {
      this.cnt -= e >> 8;
      return e & 255;
    }
    return slowDecode(h, (this.buf >>> (this.cnt - 16)) & 0xffff, this);
  }

  /** True when more bits were used than the segment holds (a truncated file). */
  overran(): boolean {
    return (this.pos - this.end) * 8 > this.cnt;
  }

  /** At a restart marker: drop buffered bits and go to the next segment. */
  restart(): void {
    if (this.overran()) throw corrupt("truncated scan");
    this.buf = 0, this.cnt = 0;
    if (this.seg + 2 < this.segs.length) this.seg++;
    this.pos = this.segs[this.seg], this.end = this.segs[this.seg + 1];
  }
}

function slowDecode(h: Huffman, c16: number, r: { cnt: number }): number {
  for (let l = 10; l <= 16; l++) {
    const code = c16 >>> (16 - l);
    if (code < h.maxcode[l]) {
      r.cnt -= l;
      return h.vals[code + h.delta[l]];
    }
  }
  throw corrupt("bad Huffman code");
}

/**
 * Quantised coefficients of one MCU row on demand: per component, `v` block rows of `bx` blocks, 64
 * coefficients each (natural order).
 */
export interface RowSource {
  row(my: number): Promise<Int16Array[]> | Int16Array[];
}

/** Sequential JPEGs with one scan holding every component can be decoded row by row. */
export function canStream(f: JpegFile): boolean {
  return !f.progressive && f.scans.length === 1 && f.scans[0].comps.length === f.comps.length &&
    (f.comps.length > 1 || (f.comps[0].h === 1 && f.comps[0].v === 1));
}

/**
 * Progressive (or multi-scan) JPEG: every scan refines stored coefficients, so they are decoded once
 * into memory (2 bytes per coefficient: 3 bytes per pixel for 4:2:0) and rows are views.
 */
export async function storedRows(d: Uint8Array, f: JpegFile): Promise<RowSource> {
  await decodeCoefficients(d, f);
  return {
    row: (my) => f.comps.map((c) => c.coefs!.subarray(my * c.v * c.bx * 64, (my + 1) * c.v * c.bx * 64)),
  };
}

interface Checkpoint {
  buf: number;
  cnt: number;
  pos: number;
  end: number;
  seg: number;
  pred: Int32Array;
  since: number;
}

/**
 * Baseline JPEG, decoded row by row without storing the image's coefficients: the entropy decoder's
 * state is saved at the start of every MCU row it passes, so a later render (the face region) restarts
 * at the first row it needs. Memory: one MCU row of coefficients plus the unstuffed scan bytes.
 */
export function streamedRows(d: Uint8Array, f: JpegFile): RowSource {
  const s = f.scans[0];
  const { u, segs } = unstuff(d, s.start, s.end);
  const r = new BitReader(u, segs);
  const comps = s.comps.map((ci) => f.comps[ci]);
  const bufs = f.comps.map((c) => new Int16Array(c.v * c.bx * 64));
  const scanBufs = s.comps.map((ci) => bufs[ci]);
  const pred = new Int32Array(comps.length);
  const eob = { run: 0 };
  const decodeBlock = blockDecoder(false, s, r, pred, eob);
  const checkpoints: Checkpoint[] = [];
  let next = 0, since = 0;
  const save = (): Checkpoint => ({
    buf: r.buf,
    cnt: r.cnt,
    pos: r.pos,
    end: r.end,
    seg: r.seg,
    pred: pred.slice(),
    since,
  });
  const restore = (c: Checkpoint) => {
    r.buf = c.buf, r.cnt = c.cnt, r.pos = c.pos, r.end = c.end, r.seg = c.seg;
    pred.set(c.pred), since = c.since;
  };
  checkpoints[0] = save();
  const decodeRow = (my: number) => {
    for (const b of bufs) b.fill(0);
    const single = comps.length === 1;
    const mx = single ? comps[0].cx : f.mcusX;
    for (let x = 0; x < mx; x++) {
      if (s.ri && since === s.ri) {
        r.restart();
        pred.fill(0), since = 0;
      }
      for (let k = 0; k < comps.length; k++) {
        const c = comps[k], out = scanBufs[k];
        for (let v = 0; v < c.v; v++) {
          for (let h = 0; h < c.h; h++) decodeBlock(k, out, (v * c.bx + x * c.h + h) * 64);
        }
      }
      since++;
    }
    if (r.overran()) throw corrupt("truncated scan");
    next = my + 1;
    checkpoints[next] = save();
  };
  return {
    async row(my: number) {
      if (my !== next) {
        // Resume from the nearest saved row at or before `my`, then skip forward.
        let k = Math.min(my, checkpoints.length - 1);
        while (!checkpoints[k]) k--;
        restore(checkpoints[k]);
        next = k;
        while (next < my) {
          decodeRow(next);
          await maybeYield();
        }
      }
      decodeRow(my);
      return bufs;
    },
  };
}

/** Decode all scans into per-component quantised coefficients (natural order). */
export async function decodeCoefficients(d: Uint8Array, f: JpegFile): Promise<void> {
  for (const c of f.comps) c.coefs = new Int16Array(c.bx * c.by * 64);
  for (const s of f.scans) await decodeScan(d, f, s);
}

async function decodeScan(d: Uint8Array, f: JpegFile, s: Scan): Promise<void> {
  const { u, segs } = unstuff(d, s.start, s.end);
  const r = new BitReader(u, segs);
  const n = s.comps.length;
  const comps = s.comps.map((ci) => f.comps[ci]);
  const pred = new Int32Array(n);
  const eob = { run: 0 };
  const decodeBlock = blockDecoder(f.progressive, s, r, pred, eob);
  const single = n === 1;
  const mx = single ? comps[0].cx : f.mcusX, my = single ? comps[0].cy : f.mcusY;
  let sinceRestart = 0;
  for (let y = 0; y < my; y++) {
    for (let x = 0; x < mx; x++) {
      if (s.ri && sinceRestart === s.ri) {
        r.restart();
        pred.fill(0), eob.run = 0, sinceRestart = 0;
      }
      if (single) {
        const c = comps[0];
        decodeBlock(0, c.coefs!, (y * c.bx + x) * 64);
      } else {
        for (let k = 0; k < n; k++) {
          const c = comps[k];
          for (let v = 0; v < c.v; v++) {
            for (let h = 0; h < c.h; h++) decodeBlock(k, c.coefs!, ((y * c.v + v) * c.bx + x * c.h + h) * 64);
          }
        }
      }
      sinceRestart++;
    }
    if (r.overran()) throw corrupt("truncated scan");
    await maybeYield();
  }
}

/**
 * One baseline block, with the reader's state in locals (the hot loop of the decoder). AC codes
 * whose magnitude bits fit the 9-bit lookahead are decoded in one table step.
 */
function baselineBlock(
  r: BitReader,
  dcH: Huffman,
  acH: Huffman,
  pred: Int32Array,
  k: number,
  out: Int16Array,
  o: number,
): void {
  const t = r.decode(dcH);
  if (t > 11) throw corrupt("DC magnitude");
  pred[k] += r.extend(t);
  out[o] = pred[k];
  const u = r.u, fastAc = acH.fastAc, lut = acH.lut;
  let buf = r.buf, cnt = r.cnt, pos = r.pos;
  const end = r.end;
  for (let i = 1; i < 64;) {
    if (cnt < 16) {
      while (cnt <= 24) {
        buf = ((buf << 8) | (pos < end ? u[pos] : 0)) >>> 0;
        pos++;
        cnt += 8;
      }
    }
    const peek = (buf >>> (cnt - 9)) & 511;
    const fe = fastAc[peek];
    if (fe) {
      cnt -= fe & 255;
      i += (fe >> 8) & 255;
      if (i > 63) throw corrupt("coefficient index");
      out[o + ZZ[i]] = fe >> 16;
      i++;
      continue;
    }
    let rs: number;
    const e = lut[peek];
    if (e) {
      cnt -= e >> 8;
      rs = e & 255;
    } else {
      r.cnt = cnt;
      rs = slowDecode(acH, (buf >>> (cnt - 16)) & 0xffff, r);
      cnt = r.cnt;
    }
    const sz = rs & 15, run = rs >> 4;
    if (sz === 0) {
      if (run !== 15) break;
      i += 16;
      continue;
    }
    i += run;
    if (i > 63) throw corrupt("coefficient index");
    if (cnt < sz) {
      while (cnt <= 24) {
        buf = ((buf << 8) | (pos < end ? u[pos] : 0)) >>> 0;
        pos++;
        cnt += 8;
      }
    }
    cnt -= sz;
    const v = (buf >>> cnt) & ((1 << sz) - 1);
    out[o + ZZ[i]] = v < 1 << (sz - 1) ? v - (1 << sz) + 1 : v;
    i++;
  }
  r.buf = buf, r.cnt = cnt, r.pos = pos;
}

type BlockFn = (k: number, out: Int16Array, o: number) => void;

function blockDecoder(
  progressive: boolean,
  s: Scan,
  r: BitReader,
  pred: Int32Array,
  eob: { run: number },
): BlockFn {
  const { dc, ac, ss, se, ah, al } = s;
  if (!progressive) return (k, out, o) => baselineBlock(r, dc[k]!, ac[k]!, pred, k, out, o);
  if (ss === 0) {
    if (ah === 0) {
      return (k, out, o) => {
        const t = r.decode(dc[k]!);
        if (t > 11) throw corrupt("DC magnitude");
        pred[k] += r.extend(t);
        out[o] = pred[k] * (1 << al);
      };
    }
    return (_k, out, o) => {
      if (r.bit()) out[o] |= 1 << al;
    };
  }
  const h = ac[0]!;
  if (ah === 0) {
    return (_k, out, o) => {
      if (eob.run > 0) {
        eob.run--;
        return;
      }
      for (let i = ss; i <= se;) {
        const rs = h === null ? 0 : r.decode(h), sz = rs & 15, run = rs >> 4;
        if (sz === 0) {
          if (run < 15) {
            eob.run = (1 << run) - 1;
            if (run) eob.run += r.bits(run);
            break;
          }
          i += 16;
          continue;
        }
        i += run;
        if (i > 63) throw corrupt("coefficient index");
        out[o + ZZ[i]] = r.extend(sz) * (1 << al);
        i++;
      }
    };
  }
  const p1 = 1 << al, m1 = -1 << al;
  const refine = (out: Int16Array, z: number) => {
    const c = out[z];
    if (r.bit() && (c & p1) === 0) out[z] = c >= 0 ? c + p1 : c + m1;
  };
  return (_k, out, o) => {
    let i = ss;
    if (eob.run <= 0) {
      for (; i <= se; i++) {
        const rs = r.decode(h);
        let run = rs >> 4;
        const sz = rs & 15;
        let val = 0;
        if (sz) {
          if (sz !== 1) throw corrupt("refinement magnitude");
          val = r.bit() ? p1 : m1;
        } else if (run !== 15) {
          eob.run = 1 << run;
          if (run) eob.run += r.bits(run);
          break;
        }
        while (i <= se) {
          const z = o + ZZ[i];
          if (out[z] !== 0) refine(out, z);
          else if (--run < 0) break;
          i++;
        }
        if (val) {
          if (i > 63) throw corrupt("coefficient index");
          out[o + ZZ[i]] = val;
        }
      }
    }
    if (eob.run > 0) {
      for (; i <= se; i++) {
        const z = o + ZZ[i];
        if (out[z] !== 0) refine(out, z);
      }
      eob.run--;
    }
  };
}

/**
 * Reduced IDCT basis: output pixel x of an n-point row is the mean of the 8/n full-resolution pixels
 * it covers, so m[x*8+u] = mean over those pixels of C(u)/2·cos((2p+1)uπ/16). Same spirit as libjpeg's
 * scaled IDCTs (which also use the higher coefficients); for n = 1 only the DC term survives.
 */
const BASIS: Record<number, Float64Array> = {};
for (const n of [1, 2, 4, 8]) {
  const m = new Float64Array(n * 8), k = 8 / n;
  for (let x = 0; x < n; x++) {
    for (let u = 0; u < 8; u++) {
      let sum = 0;
      for (let j = 0; j < k; j++) sum += Math.cos(((2 * (x * k + j) + 1) * u * Math.PI) / 16);
      m[x * 8 + u] = ((u === 0 ? Math.SQRT1_2 : 1) / 2) * (sum / k);
    }
  }
  BASIS[n] = m;
}

const tmpBlock = new Float64Array(64);
const deq = new Float64Array(64);

/** Inverse DCT of one block to an nx × ny tile (n ∈ {1, 2, 4, 8}), box-averaged (separable, float). */
function idctScaled(
  coefs: Int16Array,
  o: number,
  q: Int32Array,
  nx: number,
  ny: number,
  out: Uint8Array,
  stride: number,
  oo: number,
): void {
  let acZero = true;
  for (let i = 0; i < 64; i++) {
    const c = coefs[o + i];
    deq[i] = c * q[i];
    if (c !== 0 && i !== 0) acZero = false;
  }
  if (acZero) {
    const dcv = Math.round(deq[0] / 8 + 128);
    const val = dcv < 0 ? 0 : dcv > 255 ? 255 : dcv;
    for (let y = 0; y < ny; y++) out.fill(val, oo + y * stride, oo + y * stride + nx);
    return;
  }
  const mx = BASIS[nx], my = BASIS[ny];
  for (let v = 0; v < 8; v++) {
    const r = v * 8;
    for (let x = 0; x < nx; x++) {
      const b = x * 8;
      tmpBlock[r + x] = mx[b] * deq[r] + mx[b + 1] * deq[r + 1] + mx[b + 2] * deq[r + 2] +
        mx[b + 3] * deq[r + 3] +
        mx[b + 4] * deq[r + 4] + mx[b + 5] * deq[r + 5] + mx[b + 6] * deq[r + 6] + mx[b + 7] * deq[r + 7];
    }
  }
  for (let y = 0; y < ny; y++) {
    const row = oo + y * stride, b = y * 8;
    for (let x = 0; x < nx; x++) {
      const sum = 128 + my[b] * tmpBlock[x] + my[b + 1] * tmpBlock[8 + x] + my[b + 2] * tmpBlock[16 + x] +
        my[b + 3] * tmpBlock[24 + x] + my[b + 4] * tmpBlock[32 + x] + my[b + 5] * tmpBlock[40 + x] +
        my[b + 6] * tmpBlock[48 + x] + my[b + 7] * tmpBlock[56 + x];
      const px = Math.round(sum);
      out[row + x] = px < 0 ? 0 : px > 255 ? 255 : px;
    }
  }
}

/** A rectangle in stored (pre-orientation) full-resolution pixels, end-exclusive. */
export interface Rect {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/**
 * Render `rect` of the image at 1/`denom` scale (denom ∈ 1, 2, 4, 8) to interleaved RGB. The output
 * covers pixels floor(x0/denom) … ceil(x1/denom) of the whole image scaled as libjpeg does
 * (ceil(W/denom) × ceil(H/denom)); returns it with its origin in scaled pixels.
 */
export async function renderJpeg(
  f: JpegFile,
  source: RowSource,
  rect: Rect,
  denom: 1 | 2 | 4 | 8,
): Promise<{ x: number; y: number; width: number; height: number; rgb: Uint8Array }> {
  const N = 8 / denom;
  const mcuW = 8 * f.hmax, mcuH = 8 * f.vmax;
  const mx0 = Math.floor(rect.x0 / mcuW), mx1 = Math.min(f.mcusX, Math.ceil(rect.x1 / mcuW));
  const my0 = Math.floor(rect.y0 / mcuH), my1 = Math.min(f.mcusY, Math.ceil(rect.y1 / mcuH));
  const fullW = Math.ceil(f.width / denom), fullH = Math.ceil(f.height / denom);
  const ox0 = Math.floor(rect.x0 / denom), oy0 = Math.floor(rect.y0 / denom);
  const ox1 = Math.min(fullW, Math.ceil(rect.x1 / denom)), oy1 = Math.min(fullH, Math.ceil(rect.y1 / denom));
  const ow = Math.max(0, ox1 - ox0), oh = Math.max(0, oy1 - oy0);
  // Per component: IDCT size (nx, ny) and a plane of the MCU-aligned region at that resolution.
  const planes = f.comps.map((c) => {
    const nx = Math.min(8, pow2ceil((N * f.hmax) / c.h)), ny = Math.min(8, pow2ceil((N * f.vmax) / c.v));
    const bx0 = mx0 * c.h, bx1 = mx1 * c.h, by0 = my0 * c.v, by1 = my1 * c.v;
    const w = (bx1 - bx0) * nx, h = (by1 - by0) * ny;
    const data = new Uint8Array(w * h);
    // Output pixel (region-relative) → plane index: plane px per output px = c.h·nx / (hmax·N).
    const rx = (c.h * nx) / (f.hmax * N), ry = (c.v * ny) / (f.vmax * N);
    const offX = ox0 - mx0 * (mcuW / denom), offY = oy0 - my0 * (mcuH / denom);
    const xmap = new Int32Array(ow), ymap = new Int32Array(oh);
    for (let x = 0; x < ow; x++) xmap[x] = Math.min(w - 1, Math.floor((x + offX) * rx));
    for (let y = 0; y < oh; y++) ymap[y] = Math.min(h - 1, Math.floor((y + offY) * ry));
    return { c, nx, ny, bx0, bx1, by0, by1, w, data, xmap, ymap };
  });
  for (let my = my0; my < my1; my++) {
    const rows = await source.row(my);
    for (let k = 0; k < planes.length; k++) {
      const pl = planes[k], { c, nx, ny, w } = pl, coefs = rows[k], q = c.q!;
      for (let v = 0; v < c.v; v++) {
        const prow = ((my - my0) * c.v + v) * ny * w;
        if (nx === 1 && ny === 1) {
          // 1/8 scale: each block is its DC coefficient (the 1×1 IDCT), one pixel per block.
          const q0 = q[0] / 8;
          for (let bx = pl.bx0, o = prow, i = (v * c.bx + bx) * 64; bx < pl.bx1; bx++, o++, i += 64) {
            const val = Math.round(coefs[i] * q0 + 128);
            pl.data[o] = val < 0 ? 0 : val > 255 ? 255 : val;
          }
          continue;
        }
        for (let bx = pl.bx0; bx < pl.bx1; bx++) {
          idctScaled(coefs, (v * c.bx + bx) * 64, q, nx, ny, pl.data, w, prow + (bx - pl.bx0) * nx);
        }
      }
    }
    await maybeYield();
  }
  const rgb = new Uint8Array(ow * oh * 3);
  colourConvert(f, planes, ow, oh, rgb);
  return { x: ox0, y: oy0, width: ow, height: oh, rgb };
}

function pow2ceil(v: number): number {
  let n = 1;
  while (n < v) n *= 2;
  return n;
}

/** JFIF YCbCr → RGB in 16.16 fixed point (as libjpeg's jdcolor.c), indexed by the 8-bit Cb/Cr. */
const CR_R = new Int32Array(256),
  CB_B = new Int32Array(256),
  CR_G = new Int32Array(256),
  CB_G = new Int32Array(256);
for (let i = 0; i < 256; i++) {
  const x = i - 128;
  CR_R[i] = Math.round(1.402 * x);
  CB_B[i] = Math.round(1.772 * x);
  CR_G[i] = -Math.round(0.714136 * 65536 * x);
  CB_G[i] = -Math.round(0.344136 * 65536 * x) + 32768;
}

interface Plane {
  w: number;
  data: Uint8Array;
  xmap: Int32Array;
  ymap: Int32Array;
}

function colourConvert(f: JpegFile, planes: Plane[], ow: number, oh: number, rgb: Uint8Array): void {
  const n = planes.length;
  // JFIF: 3 components are YCbCr unless Adobe says transform 0 (RGB); 4 are CMYK unless Adobe says YCCK.
  const ycc = n === 3 ? f.adobe !== 0 : n === 4 ? f.adobe === 2 : false;
  const out = new Uint8ClampedArray(rgb.buffer, rgb.byteOffset, rgb.length); // clamps on store
  const p0 = planes[0], p1 = planes[n > 1 ? 1 : 0], p2 = planes[n > 2 ? 2 : 0], p3 = planes[n > 3 ? 3 : 0];
  const x0 = p0.xmap, x1 = p1.xmap, x2 = p2.xmap, x3 = p3.xmap;
  const d0 = p0.data, d1 = p1.data, d2 = p2.data, d3 = p3.data;
  let o = 0;
  for (let y = 0; y < oh; y++) {
    const r0 = p0.ymap[y] * p0.w, r1 = p1.ymap[y] * p1.w, r2 = p2.ymap[y] * p2.w, r3 = p3.ymap[y] * p3.w;
    if (n === 1) {
      for (let x = 0; x < ow; x++, o += 3) rgb[o] = rgb[o + 1] = rgb[o + 2] = d0[r0 + x0[x]];
    } else if (n === 3 && ycc) {
      for (let x = 0; x < ow; x++, o += 3) {
        const Y = d0[r0 + x0[x]], cb = d1[r1 + x1[x]], cr = d2[r2 + x2[x]];
        out[o] = Y + CR_R[cr];
        out[o + 1] = Y + ((CB_G[cb] + CR_G[cr]) >> 16);
        out[o + 2] = Y + CB_B[cb];
      }
    } else {
      for (let x = 0; x < ow; x++, o += 3) {
        let r = d0[r0 + x0[x]], g = d1[r1 + x1[x]], b = d2[r2 + x2[x]];
        if (ycc) {
          const Y = r, cb = g, cr = b;
          r = Math.min(255, Math.max(0, Y + CR_R[cr]));
          g = Math.min(255, Math.max(0, Y + ((CB_G[cb] + CR_G[cr]) >> 16)));
          b = Math.min(255, Math.max(0, Y + CB_B[cb]));
        }
        if (n === 4) {
          // Adobe CMYK is stored inverted (255 = no ink): RGB = stored · K / 255.
          const k = d3[r3 + x3[x]];
          r = (r * k) / 255, g = (g * k) / 255, b = (b * k) / 255;
        }
        out[o] = r, out[o + 1] = g, out[o + 2] = b;
      }
    }
  }
}
