/**
 * Seeded fuzzing of every parser on real files: refdata .pth checkpoints (raw bytes and, with valid CRCs,
 * the pickle inside), .npz archives, safetensors and bundles. Every failure must be a typed RepmlpError,
 * and every success must yield self-consistent tensors. Case counts are fixed so the run is reproducible.
 */
import assert from "node:assert/strict";
import { RepmlpError } from "../../runtime/src/errors.ts";
import {
  openZip,
  readBundle,
  readNpy,
  readNpz,
  readPth,
  readSafetensors,
  readStateDict,
  unpickle,
  writeBundle,
  writeSafetensors,
} from "../../runtime/src/io/mod.ts";
import { numel, type StateDict } from "../../runtime/src/tensor.ts";
import { makePth, REFDATA, rng } from "./io_testutil.ts";

type Rand = () => number;

const int = (r: Rand, n: number) => Math.floor(r() * n);

function pick<T>(r: Rand, xs: readonly T[]): T {
  return xs[int(r, xs.length)];
}

/** Position biased towards structure: the head, the tail (zip central directory) or anywhere. */
function position(r: Rand, len: number, hot?: [number, number]): number {
  const u = r();
  if (hot && u < 0.4) return Math.min(len - 1, hot[0] + int(r, Math.max(1, hot[1] - hot[0])));
  if (u < 0.6) return Math.max(0, len - 1 - int(r, Math.min(len, 2048)));
  if (u < 0.75) return int(r, Math.min(len, 512));
  return int(r, len);
}

const INTERESTING = [0, 1, 2, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0xffffffff, 0x10000, 46, 30, 22, 64];

/** One random mutation of a byte string. */
function mutate(r: Rand, src: Uint8Array, hot?: [number, number]): Uint8Array {
  const len = src.length;
  switch (int(r, 7)) {
    case 0: { // flip 1-8 bytes
      const out = src.slice();
      for (let k = 1 + int(r, 8); k > 0; k--) out[position(r, len, hot)] ^= 1 + int(r, 255);
      return out;
    }
    case 1: // truncate
      return src.slice(0, int(r, len));
    case 2: { // insert random bytes
      const at = position(r, len, hot);
      const ins = Uint8Array.from({ length: 1 + int(r, 16) }, () => int(r, 256));
      const out = new Uint8Array(len + ins.length);
      out.set(src.subarray(0, at));
      out.set(ins, at);
      out.set(src.subarray(at), at + ins.length);
      return out;
    }
    case 3: { // delete a range
      const n = Math.min(len, 1 + int(r, 32));
      const at = Math.min(position(r, len, hot), len - n);
      const out = new Uint8Array(len - n);
      out.set(src.subarray(0, at));
      out.set(src.subarray(at + n), at);
      return out;
    }
    case 4: { // overwrite a u16/u32 field with an interesting value
      const out = src.slice();
      const at = position(r, len, hot);
      const v = r() < 0.8 ? pick(r, INTERESTING) : int(r, 2 ** 32);
      const dv = new DataView(out.buffer);
      if (at + 4 <= len && r() < 0.5) dv.setUint32(at, v >>> 0, true);
      else if (at + 2 <= len) dv.setUint16(at, v & 0xffff, true);
      return out;
    }
    case 5: { // duplicate a chunk
      const at = position(r, len, hot);
      const n = 1 + int(r, 64);
      const chunk = src.slice(at, at + n);
      const out = new Uint8Array(len + chunk.length);
      out.set(src.subarray(0, at));
      out.set(chunk, at);
      out.set(src.subarray(at), at + chunk.length);
      return out;
    }
    default: { // zero a range
      const out = src.slice();
      const at = position(r, len, hot);
      out.fill(0, at, at + 1 + int(r, 64));
      return out;
    }
  }
}

/** A random 8-byte little-endian header length. */
function withHeaderLength(r: Rand, src: Uint8Array): Uint8Array {
  const out = src.slice();
  const dv = new DataView(out.buffer);
  const real = Number(dv.getBigUint64(0, true));
  const choices = [
    0n,
    1n,
    BigInt(real + int(r, 17) - 8),
    BigInt(src.length),
    BigInt(src.length - 8),
    100_000_001n,
    2n ** 32n + BigInt(real),
    2n ** 64n - 1n,
    BigInt(int(r, 2 ** 31)),
  ];
  dv.setBigUint64(0, pick(r, choices), true);
  return out;
}

function checkSD(sd: StateDict): void {
  for (const [k, t] of sd) {
    assert.equal(typeof k, "string");
    assert.ok(t.shape.every((d) => Number.isSafeInteger(d) && d >= 0), k);
    assert.equal(t.data.length, numel(t.shape), k);
  }
}

/** Counts of one test's cases: each test owns its own, so no result depends on which tests ran before. */
class Fuzz {
  cases = 0;
  ok = 0;
  typed = 0;
  slowestMs = 0;
  constructor(readonly name: string) {}

  /** Run one case: it must parse into consistent tensors or throw a RepmlpError. */
  async expectTyped(what: string, fn: () => unknown, isStateDict = true): Promise<void> {
    this.cases++;
    const t0 = performance.now();
    try {
      const v = await fn();
      if (isStateDict && v instanceof Map) checkSD(v as StateDict);
      this.ok++;
    } catch (e) {
      if (!(e instanceof RepmlpError)) {
        throw new Error(`${what}: untyped ${(e as Error)?.name}: ${(e as Error)?.message}`, { cause: e });
      }
      assert.ok(e.code.length > 0 && e.message.length > 0);
      this.typed++;
    }
    this.slowestMs = Math.max(this.slowestMs, performance.now() - t0);
  }

  /** The fixed case count ran and the mutations reached the error paths. */
  done(expectedCases: number): void {
    assert.equal(this.cases, expectedCases);
    assert.ok(this.typed > 0, `${this.name}: no mutation was rejected`);
    console.log(
      `fuzz ${this.name}: ${this.cases} cases, ${this.typed} typed errors, ${this.ok} parsed; slowest case ${
        this.slowestMs.toFixed(1)
      } ms`,
    );
  }
}

const PTH_CASES = [
  "net_block_c8_S1_p2x2_k13_gp4",
  "net_unit_c16_S4_p2x2_k13_gp4",
  "r21_repmlp_c8_p2x2_k13_g1",
];

Deno.test("fuzz: raw byte mutations of refdata .pth files", async () => {
  const f = new Fuzz("pth bytes");
  const r = rng(0x5eed01);
  for (const c of PTH_CASES) {
    for (const mode of ["train", "deploy"]) {
      const src = Deno.readFileSync(`${REFDATA}${c}/${mode}.pth`);
      const zip = openZip(src);
      const pkl = zip.entries[0];
      const hot: [number, number] = [pkl.localHeaderOffset, pkl.localHeaderOffset + 64 + pkl.size];
      for (let i = 0; i < 250; i++) {
        const m = mutate(r, src, hot);
        await f.expectTyped(`${c}/${mode}.pth #${i}`, () => readPth(m));
        if (i % 10 === 0) await f.expectTyped(`${c}/${mode}.pth dispatch #${i}`, () => readStateDict(m));
      }
    }
  }
  f.done(3 * 2 * (250 + 25));
});

Deno.test("fuzz: pickle mutations inside valid zips (CRCs recomputed)", async () => {
  const f = new Fuzz("pickle");
  const r = rng(0x5eed02);
  for (const c of PTH_CASES) {
    for (const mode of ["train", "deploy"]) {
      const zip = openZip(Deno.readFileSync(`${REFDATA}${c}/${mode}.pth`));
      const prefix = `${mode}/`;
      const pkl = zip.read(`${prefix}data.pkl`).slice();
      const storages: Record<string, Uint8Array> = {};
      for (const e of zip.entries) {
        if (e.name.startsWith(`${prefix}data/`)) {
          storages[e.name.slice(prefix.length + 5)] = zip.read(e).slice();
        }
      }
      for (let i = 0; i < 300; i++) {
        const m = mutate(r, pkl, [0, pkl.length]);
        await f.expectTyped(
          `${c}/${mode} pickle #${i}`,
          () => unpickle(m, { persistentLoad: (p) => p }),
          false,
        );
        // Occasionally also shorten a storage so tensor bounds checks are exercised.
        const st = { ...storages };
        if (r() < 0.2) {
          const k = pick(r, Object.keys(st));
          st[k] = st[k].subarray(0, int(r, st[k].length));
        }
        await f.expectTyped(`${c}/${mode} pth(pickle) #${i}`, () => readPth(makePth(m, st, mode)));
      }
    }
  }
  f.done(3 * 2 * 300 * 2);
});

Deno.test("fuzz: refdata .npz archives and .npy members", async () => {
  const f = new Fuzz("npz/npy");
  const r = rng(0x5eed03);
  const src = Deno.readFileSync(`${REFDATA}net_block_c8_S1_p2x2_k13_gp4/deploy.npz`);
  const member = openZip(src).read(openZip(src).entries[0]).slice();
  for (let i = 0; i < 400; i++) {
    await f.expectTyped(`npz #${i}`, () => readNpz(mutate(r, src)));
    await f.expectTyped(`npy #${i}`, () => readNpy(mutate(r, member, [0, 128])), false);
  }
  f.done(400 * 2);
});

function headerEdit(r: Rand, file: Uint8Array): Uint8Array {
  const n = Number(new DataView(file.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n)));
  const names = Object.keys(header).filter((k) => k !== "__metadata__");
  const e = header[pick(r, names)];
  const wild = [-1, 0, 1, 2 ** 53, 1.5, "3", null, [], {}, 2 ** 31, 7];
  switch (int(r, 6)) {
    case 0:
      e.dtype = pick(r, ["F32", "F16", "BF16", "I8", "I64", "U8", "BOOL", "F8_E4M3", "X", 3, null]);
      break;
    case 1:
      if (Array.isArray(e.shape) && e.shape.length) e.shape[int(r, e.shape.length)] = pick(r, wild);
      else e.shape = pick(r, wild);
      break;
    case 2:
      e.data_offsets[int(r, 2)] += int(r, 9) - 4;
      break;
    case 3:
      e.data_offsets = pick(r, [[0, 0], [0], "x", [0, 2 ** 60], [-4, 4]]);
      break;
    case 4:
      header.__metadata__ = pick(r, [null, 3, { a: 1 }, { format: "repmlp-edge-bundle" }, { x: "y" }]);
      break;
    default:
      delete e.shape;
  }
  const h = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + file.length - 8 - n);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(file.subarray(8 + n), 8 + h.length);
  return out;
}

Deno.test("fuzz: safetensors (bytes, header lengths, header fields)", async () => {
  const f = new Fuzz("safetensors");
  const r = rng(0x5eed04);
  const sd = readPth(Deno.readFileSync(`${REFDATA}net_unit_c16_S4_p2x2_k13_gp4/deploy.pth`));
  const file = writeSafetensors(sd, { note: "fuzz" });
  const n = Number(new DataView(file.buffer).getBigUint64(0, true));
  for (let i = 0; i < 500; i++) {
    await f.expectTyped(`st bytes #${i}`, () => readSafetensors(mutate(r, file, [8, 8 + n])));
    await f.expectTyped(`st length #${i}`, () => readSafetensors(withHeaderLength(r, file)));
    await f.expectTyped(`st fields #${i}`, () => readSafetensors(headerEdit(r, file)));
  }
  f.done(500 * 3);
});

Deno.test("fuzz: bundles of every dtype", async () => {
  const f = new Fuzz("bundle");
  const r = rng(0x5eed05);
  const sd = readPth(Deno.readFileSync(`${REFDATA}net_block_c32_S4_p1x1_h7_k13_gp4/deploy.pth`));
  for (const dtype of ["fp32", "fp16", "int8"] as const) {
    const file = await writeBundle({ model: { arch: "x" }, tensors: sd, dtype, meta: { t: 0.5 } });
    const n = Number(new DataView(file.buffer).getBigUint64(0, true));
    for (let i = 0; i < 200; i++) {
      await f.expectTyped(`bundle ${dtype} bytes #${i}`, () => readBundle(mutate(r, file, [8, 8 + n])));
      await f.expectTyped(`bundle ${dtype} length #${i}`, () => readBundle(withHeaderLength(r, file)));
      await f.expectTyped(`bundle ${dtype} fields #${i}`, () => readBundle(headerEdit(r, file)));
    }
  }
  f.done(3 * 200 * 3);
});
