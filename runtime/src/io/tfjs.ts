/**
 * TensorFlow.js weights manifests (`*-weights_manifest.json` + binary shards), as tfjs's
 * `io.decodeWeights` reads them: each group's shards are concatenated in `paths` order and its
 * weights are laid out back to back. Quantised weights are dequantised exactly as tfjs does:
 * uint8/uint16 `v · scale + min` (computed in float64, stored as float32), float16 via IEEE half.
 * Works on bytes (the shard loader is the caller's), so it runs in Deno, browsers and Workers.
 */
import { CorruptFileError, UnsupportedError } from "../errors.ts";
import { halfToFloat, numel, type Tensor } from "../tensor.ts";

/** Quantisation record of one weight. */
export interface TfjsQuantization {
  /** Stored type. */
  dtype: "uint8" | "uint16" | "float16";
  /** Step (uint8/uint16). */
  scale?: number;
  /** Offset (uint8/uint16). */
  min?: number;
}

/** One weight entry of a manifest group. */
export interface TfjsWeightSpec {
  /** tfjs weight name (e.g. `conv32_down/conv/filters`). */
  name: string;
  /** Shape in tfjs layout (conv filters HWIO). */
  shape: number[];
  /** Logical dtype. */
  dtype: "float32" | "int32";
  /** Present when stored quantised. */
  quantization?: TfjsQuantization;
}

/** One manifest group: shard files and the weights they hold, in order. */
export interface TfjsManifestGroup {
  /** Shard file names, relative to the manifest. */
  paths: string[];
  /** Weights in storage order. */
  weights: TfjsWeightSpec[];
}

const STORED_BYTES = { uint8: 1, uint16: 2, float16: 2, float32: 4, int32: 4 } as const;

function bad(msg: string): never {
  throw new CorruptFileError(`tfjs weights manifest: ${msg}`, {
    hint: "expected a TensorFlow.js *-weights_manifest.json (a JSON array of {paths, weights})",
  });
}

function isDims(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((d) => Number.isInteger(d) && d >= 0);
}

function checkSpec(w: unknown, i: number): TfjsWeightSpec {
  const s = w as TfjsWeightSpec;
  if (!s || typeof s !== "object" || typeof s.name !== "string" || !isDims(s.shape)) {
    bad(`weight #${i} needs a string name and an integer shape`);
  }
  if (s.dtype !== "float32" && s.dtype !== "int32") {
    throw new UnsupportedError(
      `tfjs weight '${s.name}': dtype '${String(s.dtype)}' is not supported`,
      "float32 and int32 weights are supported",
    );
  }
  const q = s.quantization;
  if (q !== undefined) {
    if (!q || typeof q !== "object" || !["uint8", "uint16", "float16"].includes(q.dtype)) {
      throw new UnsupportedError(
        `tfjs weight '${s.name}': quantization ${JSON.stringify(q)} is not supported`,
      );
    }
    if (q.dtype !== "float16" && !(Number.isFinite(q.scale) && Number.isFinite(q.min))) {
      bad(`weight '${s.name}' is ${q.dtype}-quantised without finite scale and min`);
    }
    if (q.dtype === "float16" && s.dtype !== "float32") {
      bad(`weight '${s.name}': float16 needs dtype float32`);
    }
  }
  return s;
}

/** True when `bytes` look like a tfjs weights manifest (a JSON array starting with `[`/`{"paths"`). */
export function isTfjsManifest(bytes: Uint8Array): boolean {
  const head = new TextDecoder().decode(bytes.subarray(0, 256)).replace(/\s+/g, "");
  return head.startsWith('[{"paths"') || head.startsWith('[{"weights"');
}

/** Parse and validate a manifest (throws CorruptFileError / UnsupportedError). */
export function parseTfjsManifest(bytes: Uint8Array | string): TfjsManifestGroup[] {
  let v: unknown;
  try {
    v = JSON.parse(
      typeof bytes === "string" ? bytes : new TextDecoder("utf-8", { fatal: true }).decode(bytes),
    );
  } catch (e) {
    bad(`not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(v) || v.length === 0) bad("top level must be a non-empty array of groups");
  const names = new Set<string>();
  return v.map((g, gi) => {
    const grp = g as TfjsManifestGroup;
    if (!grp || typeof grp !== "object" || !Array.isArray(grp.paths) || !Array.isArray(grp.weights)) {
      bad(`group #${gi} needs 'paths' and 'weights' arrays`);
    }
    if (grp.paths.length === 0 || grp.paths.some((p) => typeof p !== "string" || p === "")) {
      bad(`group #${gi}: 'paths' must be non-empty file names`);
    }
    const weights = grp.weights.map((w, i) => checkSpec(w, i));
    for (const w of weights) {
      if (names.has(w.name)) bad(`weight '${w.name}' appears twice`);
      names.add(w.name);
    }
    return { paths: grp.paths, weights };
  });
}

function decodeOne(s: TfjsWeightSpec, buf: Uint8Array, off: number): { t: Tensor; bytes: number } {
  const n = numel(s.shape), q = s.quantization;
  const stored = q ? q.dtype : s.dtype;
  const bytes = n * STORED_BYTES[stored];
  if (off + bytes > buf.length) {
    bad(`weight '${s.name}' needs bytes ${off}–${off + bytes} but the shards hold ${buf.length}`);
  }
  const dv = new DataView(buf.buffer, buf.byteOffset + off, bytes);
  const shape = [...s.shape];
  if (!q) {
    if (s.dtype === "int32") {
      const d = new Int32Array(n);
      for (let i = 0; i < n; i++) d[i] = dv.getInt32(4 * i, true);
      return { t: { dtype: "int32", shape, data: d }, bytes };
    }
    const d = new Float32Array(n);
    for (let i = 0; i < n; i++) d[i] = dv.getFloat32(4 * i, true);
    return { t: { dtype: "float32", shape, data: d }, bytes };
  }
  if (q.dtype === "float16") {
    const d = new Float32Array(n);
    for (let i = 0; i < n; i++) d[i] = halfToFloat(dv.getUint16(2 * i, true));
    return { t: { dtype: "float32", shape, data: d }, bytes };
  }
  const get = q.dtype === "uint8" ? (i: number) => dv.getUint8(i) : (i: number) => dv.getUint16(2 * i, true);
  const scale = q.scale!, min = q.min!;
  if (s.dtype === "int32") {
    const d = new Int32Array(n);
    for (let i = 0; i < n; i++) d[i] = Math.round(get(i) * scale + min);
    return { t: { dtype: "int32", shape, data: d }, bytes };
  }
  // tfjs: values[i] = v * scale + min in float64, stored into a Float32Array.
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = get(i) * scale + min;
  return { t: { dtype: "float32", shape, data: d }, bytes };
}

/**
 * Decode every weight of a manifest. `shard(path)` returns the bytes of one shard file (paths as
 * written in the manifest). Each group's shards must hold exactly its weights: missing bytes and
 * trailing bytes are both CorruptFileError (a truncated or wrong `.bin`).
 */
export async function decodeTfjsWeights(
  groups: TfjsManifestGroup[],
  shard: (path: string) => Promise<Uint8Array> | Uint8Array,
): Promise<Map<string, Tensor>> {
  const out = new Map<string, Tensor>();
  for (const g of groups) {
    const parts = [];
    for (const p of g.paths) parts.push(await shard(p));
    const total = parts.reduce((a, p) => a + p.length, 0);
    const buf = new Uint8Array(total);
    let o = 0;
    for (const p of parts) buf.set(p, o), o += p.length;
    let off = 0;
    for (const s of g.weights) {
      const { t, bytes } = decodeOne(s, buf, off);
      out.set(s.name, t);
      off += bytes;
    }
    if (off !== total) bad(`shards ${g.paths.join(", ")} hold ${total} bytes, the weights use ${off}`);
  }
  return out;
}
