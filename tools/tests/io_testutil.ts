/** Test helpers for the io tests: a tiny pickle writer, a .pth zip builder, a seeded RNG. */
import { zipSync } from "fflate";

/** Emits pickle opcodes by hand, so tests can build both valid and hostile streams. */
export class PickleWriter {
  #out: number[] = [];
  #enc = new TextEncoder();

  /** Raw bytes. */
  raw(...bytes: number[]): this {
    this.#out.push(...bytes);
    return this;
  }
  #u32(n: number): number[] {
    return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
  }
  proto(v = 2): this {
    return this.raw(0x80, v);
  }
  /** GLOBAL 'module\nname\n'. */
  global(module: string, name: string): this {
    return this.raw(0x63, ...this.#enc.encode(`${module}\n${name}\n`));
  }
  /** SHORT_BINUNICODE module, SHORT_BINUNICODE name, STACK_GLOBAL. */
  stackGlobal(module: string, name: string): this {
    return this.str(module).str(name).raw(0x93);
  }
  /** BINUNICODE (or SHORT_BINUNICODE when `short`). */
  str(s: string, short = false): this {
    const b = this.#enc.encode(s);
    if (short || b.length < 256) return this.raw(0x8c, b.length, ...b);
    return this.raw(0x58, ...this.#u32(b.length), ...b);
  }
  binunicode(s: string): this {
    const b = this.#enc.encode(s);
    return this.raw(0x58, ...this.#u32(b.length), ...b);
  }
  int(n: number): this {
    if (n >= 0 && n < 256) return this.raw(0x4b, n);
    if (n >= 0 && n < 65536) return this.raw(0x4d, n & 0xff, n >> 8);
    return this.raw(0x4a, ...this.#u32(n));
  }
  mark(): this {
    return this.raw(0x28);
  }
  tuple(): this {
    return this.raw(0x74);
  }
  emptyTuple(): this {
    return this.raw(0x29);
  }
  emptyDict(): this {
    return this.raw(0x7d);
  }
  reduce(): this {
    return this.raw(0x52);
  }
  setitem(): this {
    return this.raw(0x73);
  }
  setitems(): this {
    return this.raw(0x75);
  }
  build(): this {
    return this.raw(0x62);
  }
  binpersid(): this {
    return this.raw(0x51);
  }
  newfalse(): this {
    return this.raw(0x89);
  }
  stop(): this {
    return this.raw(0x2e);
  }
  /** `OrderedDict()` via GLOBAL + EMPTY_TUPLE + REDUCE. */
  orderedDict(): this {
    return this.global("collections", "OrderedDict").emptyTuple().reduce();
  }
  /** A tuple of small ints. */
  intTuple(xs: number[]): this {
    this.mark();
    for (const x of xs) this.int(x);
    return this.tuple();
  }
  /** `_rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict())`. */
  tensor(t: TensorSpec): this {
    this.global("torch._utils", "_rebuild_tensor_v2").mark();
    this.mark().str("storage").global("torch", t.storageType ?? "FloatStorage").str(t.storageKey).str("cpu")
      .int(t.storageNumel).tuple().binpersid();
    this.int(t.offset ?? 0).intTuple(t.size).intTuple(t.stride ?? cStride(t.size)).newfalse().orderedDict();
    return this.tuple().reduce();
  }
  bytes(): Uint8Array {
    return new Uint8Array(this.#out);
  }
}

/** One tensor inside a hand-built checkpoint. */
export interface TensorSpec {
  storageKey: string;
  storageType?: string;
  storageNumel: number;
  offset?: number;
  size: number[];
  stride?: number[];
}

/** C-contiguous strides. */
export function cStride(size: number[]): number[] {
  const s = new Array<number>(size.length);
  let acc = 1;
  for (let i = size.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= size[i];
  }
  return s;
}

/**
 * Pickle for `OrderedDict(key → tensor)`, optionally wrapped as `{wrapKey: sd, "epoch": 3}`,
 * followed by torch's `_metadata` BUILD.
 */
export function stateDictPickle(entries: [string, TensorSpec][], wrapKey?: string): Uint8Array {
  const w = new PickleWriter().proto(2);
  if (wrapKey) w.emptyDict().str(wrapKey);
  w.orderedDict().mark();
  for (const [k, t] of entries) w.str(k).tensor(t);
  w.setitems();
  w.emptyDict().str("_metadata").orderedDict().setitem().build();
  if (wrapKey) w.setitem().str("epoch").int(3).setitem();
  return w.stop().bytes();
}

/** A `.pth`-style zip: `<prefix>/data.pkl`, `<prefix>/data/<key>`, `<prefix>/version` (STORED). */
export function makePth(
  pkl: Uint8Array,
  storages: Record<string, Uint8Array> = {},
  prefix = "archive",
): Uint8Array {
  const files: Record<string, [Uint8Array, { level: 0 }]> = {};
  files[`${prefix}/data.pkl`] = [pkl, { level: 0 }];
  for (const [k, v] of Object.entries(storages)) files[`${prefix}/data/${k}`] = [v, { level: 0 }];
  files[`${prefix}/version`] = [new TextEncoder().encode("3\n"), { level: 0 }];
  return zipSync(files, { mtime: new Date(Date.UTC(1980, 0, 2, 12)) });
}

/** Little-endian bytes of a typed array. */
export function le(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();
}

/** Seeded PRNG (mulberry32), shared with the kit. */
export { rng } from "../../runtime/src/random.ts";

/** Refdata root (the vendored reference cases, read-only), as a path ending in "/". */
export const REFDATA = new URL("./fixtures/refdata/", import.meta.url).pathname;

/** Case folder names listed in refdata/index.json. */
export function refCases(): string[] {
  const idx = JSON.parse(Deno.readTextFileSync(`${REFDATA}index.json`)) as { name: string }[];
  return idx.map((c) => c.name);
}
