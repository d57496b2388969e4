/**
 * Read-only ZIP reader for `.pth` and `.npz` archives.
 *
 * Why not fflate's `unzipSync`: it reads the PyTorch zips fine, but it does no bounds checks (reads past
 * the end yield `undefined`/0, `subarray` silently clamps truncated entries), trusts the entry count
 * (a ZIP64 count of 2^32 spins for minutes), and never checks CRCs. For untrusted checkpoints every field
 * is validated here instead; fflate is still used for DEFLATE (`inflateSync`).
 *
 * Handled: classic and ZIP64 end records, ZIP64 extra fields, STORED and DEFLATE entries, data descriptors
 * (sizes/CRC come from the central directory), and local headers whose extra field differs from the
 * central one (torch pads local extras so data starts on 64-byte boundaries): the data start is always
 * `localOffset + 30 + localNameLen + localExtraLen`.
 */
import { inflateSync } from "fflate";
import { CorruptFileError, UnsupportedError } from "../errors.ts";

/** One member of an archive, as described by the central directory. */
export interface ZipEntry {
  /** Member path inside the archive. */
  name: string;
  /** 0 = STORED, 8 = DEFLATE. */
  method: number;
  /** CRC-32 of the uncompressed bytes. */
  crc32: number;
  /** Stored (compressed) size in bytes. */
  compressedSize: number;
  /** Uncompressed size in bytes. */
  size: number;
  /** Offset of the entry's local header. */
  localHeaderOffset: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_LOC64 = 0x07064b50;

function corrupt(msg: string): never {
  throw new CorruptFileError(`zip: ${msg}`, {
    hint: "the archive is truncated or damaged; re-download or re-save it",
  });
}

/** Bounds-checked little-endian reads over the whole file. */
class Reader {
  constructor(readonly b: Uint8Array) {}
  need(off: number, n: number, what: string): void {
    if (!Number.isSafeInteger(off) || off < 0 || n < 0 || off + n > this.b.length) {
      corrupt(`${what} at offset ${off} (+${n}) lies outside the ${this.b.length}-byte file`);
    }
  }
  u16(off: number): number {
    return this.b[off] | (this.b[off + 1] << 8);
  }
  u32(off: number): number {
    return (this.b[off] | (this.b[off + 1] << 8) | (this.b[off + 2] << 16) | (this.b[off + 3] << 24)) >>> 0;
  }
  u64(off: number, what: string): number {
    const lo = this.u32(off);
    const hi = this.u32(off + 4);
    if (hi > 0x1fffff) corrupt(`${what} does not fit in 53 bits`);
    return hi * 0x100000000 + lo;
  }
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE, as used by ZIP). fflate keeps its CRC internal, so the 256-entry table lives here. */
export function crc32(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  const t = crcTable;
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** True when the bytes start like a ZIP archive (a local header, or an empty archive's end record). */
export function isZip(bytes: Uint8Array): boolean {
  if (bytes.length < 4 || bytes[0] !== 0x50 || bytes[1] !== 0x4b) return false;
  return (bytes[2] === 3 && bytes[3] === 4) || (bytes[2] === 5 && bytes[3] === 6);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const latin1 = new TextDecoder("latin1");

/** A parsed archive: the central directory is read and validated up front, members on demand. */
export class ZipArchive {
  /** Members in central-directory order. */
  readonly entries: readonly ZipEntry[];
  readonly #byName = new Map<string, ZipEntry>();
  readonly #r: Reader;
  readonly #cdStart: number;

  /** Parse the end records and the central directory. Throws CorruptFileError on any inconsistency. */
  constructor(bytes: Uint8Array) {
    const r = new Reader(bytes);
    this.#r = r;
    const len = bytes.length;
    if (len < 22) corrupt(`file is ${len} bytes, too short for a zip end record`);

    // The end record is the last signature whose comment exactly reaches the end of the file.
    let eocd = -1;
    const stop = Math.max(0, len - 22 - 0xffff);
    for (let e = len - 22; e >= stop; e--) {
      if (r.u32(e) === SIG_EOCD && e + 22 + r.u16(e + 20) === len) {
        eocd = e;
        break;
      }
    }
    if (eocd < 0) corrupt("no end-of-central-directory record (file truncated?)");

    let disk = r.u16(eocd + 4);
    let cdDisk = r.u16(eocd + 6);
    let countDisk = r.u16(eocd + 8);
    let count = r.u16(eocd + 10);
    let cdSize = r.u32(eocd + 12);
    let cdOffset = r.u32(eocd + 16);
    let cdLimit = eocd;

    if (eocd >= 20 && r.u32(eocd - 20) === SIG_LOC64) {
      const loc = eocd - 20;
      if (r.u32(loc + 4) !== 0 || r.u32(loc + 16) > 1) {
        throw new UnsupportedError("zip: multi-disk (split) archives are not supported");
      }
      const z = r.u64(loc + 8, "ZIP64 end record offset");
      r.need(z, 56, "ZIP64 end record");
      if (z + 56 > loc) corrupt("ZIP64 end record overlaps its locator");
      if (r.u32(z) !== SIG_EOCD64) corrupt("ZIP64 locator does not point at a ZIP64 end record");
      disk = r.u32(z + 16);
      cdDisk = r.u32(z + 20);
      countDisk = r.u64(z + 24, "ZIP64 entry count");
      count = r.u64(z + 32, "ZIP64 entry count");
      cdSize = r.u64(z + 40, "ZIP64 central directory size");
      cdOffset = r.u64(z + 48, "ZIP64 central directory offset");
      cdLimit = z;
    } else if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      corrupt("end record asks for ZIP64 fields but there is no ZIP64 locator");
    }
    if (disk !== 0 || cdDisk !== 0 || countDisk !== count) {
      throw new UnsupportedError("zip: multi-disk (split) archives are not supported");
    }
    if (cdOffset + cdSize > cdLimit) {
      corrupt(`central directory (${cdOffset}+${cdSize}) runs past its end record at ${cdLimit}`);
    }
    // Every central header is at least 46 bytes: this bounds the loop by the file size.
    if (count * 46 > cdSize) corrupt(`${count} entries cannot fit in a ${cdSize}-byte central directory`);
    this.#cdStart = cdOffset;

    const entries: ZipEntry[] = [];
    let p = cdOffset;
    const cdEnd = cdOffset + cdSize;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cdEnd) corrupt(`central directory ends inside entry ${i}`);
      if (r.u32(p) !== SIG_CENTRAL) corrupt(`bad central header signature for entry ${i} at ${p}`);
      const flags = r.u16(p + 8);
      const method = r.u16(p + 10);
      const crc = r.u32(p + 16);
      let csize = r.u32(p + 20);
      let usize = r.u32(p + 24);
      const nameLen = r.u16(p + 28);
      const extraLen = r.u16(p + 30);
      const commentLen = r.u16(p + 32);
      const diskStart = r.u16(p + 34);
      let lho = r.u32(p + 42);
      const next = p + 46 + nameLen + extraLen + commentLen;
      if (next > cdEnd) corrupt(`central header of entry ${i} runs past the central directory`);
      const nameBytes = bytes.subarray(p + 46, p + 46 + nameLen);
      let name: string;
      try {
        name = flags & 0x800 ? utf8.decode(nameBytes) : latin1.decode(nameBytes);
      } catch {
        corrupt(`entry ${i} has an invalid UTF-8 name`);
      }
      // ZIP64 extra field (tag 1): only the fields saturated in the fixed header are present, in this order.
      let x = p + 46 + nameLen;
      const xEnd = x + extraLen;
      while (x + 4 <= xEnd) {
        const tag = r.u16(x);
        const sz = r.u16(x + 2);
        if (x + 4 + sz > xEnd) corrupt(`extra field of "${name}" runs past its end`);
        if (tag === 1) {
          let q = x + 4;
          const take = (what: string): number => {
            if (q + 8 > x + 4 + sz) corrupt(`ZIP64 extra field of "${name}" lacks the ${what}`);
            const v = r.u64(q, what);
            q += 8;
            return v;
          };
          if (usize === 0xffffffff) usize = take("size");
          if (csize === 0xffffffff) csize = take("compressed size");
          if (lho === 0xffffffff) lho = take("header offset");
        }
        x += 4 + sz;
      }
      if (diskStart !== 0 && diskStart !== 0xffff) {
        throw new UnsupportedError("zip: multi-disk (split) archives are not supported");
      }
      if (flags & 0x41) {
        throw new UnsupportedError(`zip: entry "${name}" is encrypted`, "decrypt the archive first");
      }
      if (lho + 30 > cdOffset) {
        corrupt(`local header of "${name}" at ${lho} is not before the central directory`);
      }
      if (this.#byName.has(name)) corrupt(`duplicate entry name "${name}"`);
      const entry: ZipEntry = {
        name,
        method,
        crc32: crc,
        compressedSize: csize,
        size: usize,
        localHeaderOffset: lho,
      };
      entries.push(entry);
      this.#byName.set(name, entry);
      p = next;
    }
    this.entries = entries;
  }

  /** Names of all members, in central-directory order. */
  names(): string[] {
    return this.entries.map((e) => e.name);
  }

  /** Whether a member exists. */
  has(name: string): boolean {
    return this.#byName.has(name);
  }

  /** Central-directory record of a member, or undefined. */
  entry(name: string): ZipEntry | undefined {
    return this.#byName.get(name);
  }

  /**
   * Uncompressed bytes of a member, CRC-checked. STORED members are returned as a view into the
   * archive bytes (copy before mutating); DEFLATE members are freshly allocated.
   */
  read(nameOrEntry: string | ZipEntry): Uint8Array {
    const e = typeof nameOrEntry === "string" ? this.#byName.get(nameOrEntry) : nameOrEntry;
    if (!e) corrupt(`no member named "${nameOrEntry}"`);
    const r = this.#r;
    const lho = e.localHeaderOffset;
    r.need(lho, 30, `local header of "${e.name}"`);
    if (r.u32(lho) !== SIG_LOCAL) corrupt(`bad local header signature for "${e.name}" at ${lho}`);
    const nameLen = r.u16(lho + 26);
    const extraLen = r.u16(lho + 28);
    const start = lho + 30 + nameLen + extraLen;
    if (start + e.compressedSize > this.#cdStart) {
      corrupt(`data of "${e.name}" (${start}+${e.compressedSize}) runs into the central directory`);
    }
    const localName = r.b.subarray(lho + 30, lho + 30 + nameLen);
    const centralName = new TextEncoder().encode(e.name);
    // Names are compared as bytes only for UTF-8/ASCII names; a latin1 name re-encodes differently.
    if (localName.length === centralName.length && !sameBytes(localName, centralName)) {
      corrupt(`local header name of "${e.name}" differs from the central directory`);
    }
    const raw = r.b.subarray(start, start + e.compressedSize);
    let out: Uint8Array;
    if (e.method === 0) {
      if (e.compressedSize !== e.size) corrupt(`STORED entry "${e.name}" has different sizes`);
      out = raw;
    } else if (e.method === 8) {
      // A DEFLATE stream expands at most ~1032x; a size beyond that is a lie (and a memory bomb).
      if (e.size > e.compressedSize * 1032 + 1024) corrupt(`entry "${e.name}" claims an impossible size`);
      let buf: Uint8Array;
      try {
        buf = new Uint8Array(e.size);
      } catch {
        corrupt(`entry "${e.name}" is too large to inflate (${e.size} bytes)`);
      }
      try {
        // With a preallocated `out`, fflate never writes past it; the length check below catches short output.
        out = inflateSync(raw, { out: buf });
      } catch (err) {
        corrupt(`cannot inflate "${e.name}": ${(err as Error).message}`);
      }
      if (out.length !== e.size) {
        corrupt(`entry "${e.name}" inflates to ${out.length} bytes, expected ${e.size}`);
      }
    } else {
      throw new UnsupportedError(
        `zip: entry "${e.name}" uses compression method ${e.method}`,
        "only STORED and DEFLATE are supported",
      );
    }
    if (crc32(out) !== e.crc32) corrupt(`CRC mismatch in "${e.name}"`);
    return out;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Parse an archive (validating the central directory). */
export function openZip(bytes: Uint8Array): ZipArchive {
  return new ZipArchive(bytes);
}

/** Every member of an archive, CRC-checked, in central-directory order. */
export function unzip(bytes: Uint8Array): Map<string, Uint8Array> {
  const z = new ZipArchive(bytes);
  const out = new Map<string, Uint8Array>();
  for (const e of z.entries) out.set(e.name, z.read(e));
  return out;
}
