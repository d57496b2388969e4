import assert from "node:assert/strict";
import { deflateSync, unzipSync, zipSync } from "fflate";
import { CorruptFileError, UnsupportedError } from "../../runtime/src/errors.ts";
import { crc32, openZip, unzip } from "../../runtime/src/io/mod.ts";
import { refCases, REFDATA } from "./io_testutil.ts";

interface RawEntry {
  name: string;
  data: Uint8Array; // as stored
  method?: number;
  usize?: number;
  crc?: number;
  flags?: number;
  localExtra?: Uint8Array;
  zip64?: boolean; // saturate sizes/offset in the central header and put them in a ZIP64 extra field
}

/** Hand-built archive, so tests control every field. */
function buildZip(entries: RawEntry[], opts: { comment?: string; zip64Count?: number } = {}): Uint8Array {
  const parts: number[] = [];
  const u16 = (v: number) => parts.push(v & 0xff, (v >>> 8) & 0xff);
  const u32 = (v: number) => parts.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  const u64 = (v: number) => (u32(v % 2 ** 32), u32(Math.floor(v / 2 ** 32)));
  const enc = new TextEncoder();
  const offsets: number[] = [];
  for (const e of entries) {
    offsets.push(parts.length);
    const name = enc.encode(e.name);
    const extra = e.localExtra ?? new Uint8Array(0);
    u32(0x04034b50), u16(20), u16(e.flags ?? 0), u16(e.method ?? 0), u16(0), u16(0);
    u32(e.crc ?? crc32(e.data)), u32(e.data.length), u32(e.usize ?? e.data.length);
    u16(name.length), u16(extra.length), parts.push(...name, ...extra, ...e.data);
  }
  const cd = parts.length;
  entries.forEach((e, i) => {
    const name = enc.encode(e.name);
    const z = e.zip64 ?? false;
    u32(0x02014b50), u16(45), u16(45), u16(e.flags ?? 0), u16(e.method ?? 0), u16(0), u16(0);
    u32(e.crc ?? crc32(e.data));
    u32(z ? 0xffffffff : e.data.length), u32(z ? 0xffffffff : e.usize ?? e.data.length);
    u16(name.length), u16(z ? 28 : 0), u16(0), u16(0), u16(0), u32(0), u32(z ? 0xffffffff : offsets[i]);
    parts.push(...name);
    if (z) u16(1), u16(24), u64(e.usize ?? e.data.length), u64(e.data.length), u64(offsets[i]);
  });
  const cdSize = parts.length - cd;
  const n = opts.zip64Count ?? entries.length;
  const z64 = parts.length;
  u32(0x06064b50), u64(44), u16(45), u16(45), u32(0), u32(0), u64(n), u64(n), u64(cdSize), u64(cd);
  u32(0x07064b50), u32(0), u64(z64), u32(1);
  const comment = enc.encode(opts.comment ?? "");
  u32(0x06054b50),
    u16(0),
    u16(0),
    u16(0xffff),
    u16(0xffff),
    u32(0xffffffff),
    u32(0xffffffff),
    u16(comment.length);
  parts.push(...comment);
  return new Uint8Array(parts);
}

const data = new TextEncoder().encode("hello, zip64 world");

Deno.test("zip: agrees with fflate's unzipSync on every refdata archive", () => {
  for (const c of refCases()) {
    for (const f of ["train.pth", "deploy.pth", "train.npz"]) {
      const bytes = Deno.readFileSync(`${REFDATA}${c}/${f}`);
      const ours = unzip(bytes);
      const theirs = unzipSync(bytes);
      assert.deepEqual([...ours.keys()], Object.keys(theirs));
      for (const [k, v] of ours) assert.deepEqual(v, theirs[k], `${c}/${f}:${k}`);
    }
  }
});

Deno.test("zip: ZIP64 extra fields, local extras, comments, DEFLATE", () => {
  const deflated = deflateSync(data);
  const bytes = buildZip([
    { name: "a", data, zip64: true, localExtra: new Uint8Array([0x46, 0x42, 3, 0, 0x5a, 0x5a, 0x5a]) },
    { name: "b", data: deflated, method: 8, usize: data.length, crc: crc32(data), zip64: true },
  ], { comment: "PK\x05\x06 looks like a signature" });
  const z = openZip(bytes);
  assert.deepEqual(z.names(), ["a", "b"]);
  assert.deepEqual(z.read("a"), data);
  assert.deepEqual(z.read("b"), data);
});

Deno.test("zip: lying or unsupported fields are typed errors", () => {
  const bad: [string, Uint8Array][] = [
    ["entry count larger than the directory", buildZip([{ name: "a", data }], { zip64Count: 2 ** 32 - 1 })],
    ["CRC", buildZip([{ name: "a", data, crc: 1 }])],
    ["duplicate names", buildZip([{ name: "a", data }, { name: "a", data }])],
    ["STORED with two sizes", buildZip([{ name: "a", data, usize: 3 }])],
    [
      "DEFLATE claiming more",
      buildZip([{ name: "a", data: deflateSync(data), method: 8, usize: 100, crc: crc32(data) }]),
    ],
    [
      "DEFLATE claiming less",
      buildZip([{ name: "a", data: deflateSync(data), method: 8, usize: 5, crc: crc32(data) }]),
    ],
    [
      "DEFLATE bomb size",
      buildZip([{ name: "a", data: deflateSync(data), method: 8, usize: 2 ** 40, crc: 0, zip64: true }]),
    ],
    [
      "DEFLATE garbage",
      buildZip([{ name: "a", data: new Uint8Array([0xff, 0xff, 0xff]), method: 8, usize: 3 }]),
    ],
    [
      "comment length off",
      (() => {
        const b = buildZip([{ name: "a", data }], { comment: "xy" });
        return b.subarray(0, b.length - 1);
      })(),
    ],
  ];
  for (const [what, bytes] of bad) {
    assert.throws(
      () => {
        const z = openZip(bytes);
        for (const e of z.entries) z.read(e);
      },
      CorruptFileError,
      what,
    );
  }
  const enc = buildZip([{ name: "a", data, flags: 1 }]);
  assert.throws(() => openZip(enc), UnsupportedError);
  const method = buildZip([{ name: "a", data, method: 12 }]);
  assert.throws(() => openZip(method).read("a"), UnsupportedError);
  // fflate-written archives (no ZIP64, no data descriptors) read too.
  assert.deepEqual(unzip(zipSync({ x: data })).get("x"), data);
});
