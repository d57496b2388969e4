/**
 * The deployable bundle: a safetensors file whose `__metadata__` carries the model description,
 * free-form meta (preprocessing, labels, provenance …), the storage dtype and a SHA-256 over the content.
 *
 * Storage per dtype:
 *  - fp32: every tensor as given (floats as F32).
 *  - fp16: float tensors with ≥ 1024 elements as F16 (raw IEEE half words); smaller ones (biases, BN) F32.
 *    A tensor with a finite value beyond the half range (±65504) stays F32 rather than turning into Inf.
 *  - int8: float tensors with ndim ≥ 2 and ≥ 1024 elements as symmetric per-output-channel (axis 0) int8
 *    in [-127, 127] plus a F32 `<key>.__scale` of shape [dim0]; value ≈ q · scale. All else F32.
 *  Non-float tensors (e.g. int64 `num_batches_tracked`) are stored unchanged.
 *
 * Hash: hex SHA-256 of `utf8(JSON.stringify({metadata, tensors})) ‖ 0x0a ‖ buffer`, where `metadata` is the
 * list of `[key, value]` pairs of `__metadata__` except `sha256`, sorted by key, and `tensors` is the list
 * of `[name, safetensors dtype, shape, [begin, end]]` in buffer order. It covers every semantic byte but
 * not header whitespace.
 *
 * Uses only WebCrypto and typed arrays, so it runs in Deno, browsers and Cloudflare Workers.
 */
import { CorruptFileError, IntegrityError, InvalidArgumentError, UnsupportedError } from "../errors.ts";
import {
  type DType,
  type F32,
  floatToHalf,
  halfToFloat,
  numel,
  type StateDict,
  type Tensor,
  toF32,
} from "../tensor.ts";
import {
  assembleSafetensors,
  DTYPE_TO_ST,
  entryTensor,
  isSafetensors,
  layoutStateDict,
  parseSafetensors,
  type SafetensorsEntry,
  type SafetensorsLayout,
} from "./safetensors.ts";

/** Storage precision of a bundle. */
export type BundleDType = "fp32" | "fp16" | "int8";

/** `__metadata__.format` of every bundle. */
export const BUNDLE_FORMAT = "repmlp-edge-bundle";
/** Current `__metadata__.format_version`. */
export const BUNDLE_FORMAT_VERSION = "1";
/** Suffix of the per-channel scale tensor that accompanies an int8 tensor. */
export const SCALE_SUFFIX = ".__scale";
/** Tensors smaller than this stay float32 in fp16/int8 bundles. */
export const MIN_COMPRESS_ELEMENTS = 1024;

/** Input of {@link writeBundle}. */
export interface WriteBundleInput {
  /** Architecture description (JSON-serialisable), from the model registry. */
  model: unknown;
  /** Deploy-mode weights; float tensors are stored per `dtype`, others unchanged. */
  tensors: StateDict;
  /** Storage precision. */
  dtype: BundleDType;
  /** Preprocessing, labels, threshold, provenance … (JSON-serialisable). */
  meta?: Record<string, unknown>;
}

/** A loaded bundle. */
export interface Bundle {
  /** Architecture description. */
  model: unknown;
  /** Free-form meta as written. */
  meta: Record<string, unknown>;
  /** Storage precision. */
  dtype: BundleDType;
  /** Weights: float tensors dequantized to float32 (unless `dequantize: false`, then the same as `raw`). */
  tensors: StateDict;
  /** Tensors exactly as stored: F16 words, int8 values plus `<key>.__scale` tensors. */
  raw: StateDict;
  /** The verified hex SHA-256. */
  sha256: string;
  /** The full `__metadata__` map. */
  metadata: Record<string, string>;
}

/** An int8 per-channel quantized tensor: value[c, …] ≈ q[c, …] · scale[c]. */
export interface Int8PerChannel {
  q: Tensor & { dtype: "int8"; data: Int8Array };
  scale: F32;
}

const FLOAT_DTYPES: ReadonlySet<DType> = new Set(["float32", "float64", "float16", "bfloat16"]);

function isFloat(t: Tensor): boolean {
  return FLOAT_DTYPES.has(t.dtype);
}

/**
 * Symmetric per-output-channel (axis 0) int8 quantization: scale[c] = max|t[c]| / 127 (1 for an all-zero
 * channel), q = round(t / scale) in [-127, 127]. Error per element ≤ scale[c] / 2.
 */
export function quantizeInt8PerChannel(t: Tensor): Int8PerChannel {
  if (!isFloat(t)) throw new InvalidArgumentError(`quantize: tensor dtype ${t.dtype} is not a float type`);
  if (t.shape.length < 1 || t.shape[0] < 1) {
    throw new InvalidArgumentError("quantize: tensor needs an axis 0");
  }
  const x = toF32(t).data;
  const C = t.shape[0];
  const row = x.length / C;
  const q = new Int8Array(x.length);
  const scale = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    let m = 0;
    for (let i = c * row; i < (c + 1) * row; i++) {
      const a = Math.abs(x[i]);
      if (!Number.isFinite(a)) throw new InvalidArgumentError(`quantize: non-finite value at channel ${c}`);
      if (a > m) m = a;
    }
    const s = m > 0 ? Math.fround(m / 127) : 1;
    scale[c] = s;
    for (let i = c * row; i < (c + 1) * row; i++) {
      const v = x[i] / s;
      const r = Math.sign(v) * Math.round(Math.abs(v)); // round half away from zero
      q[i] = Math.max(-127, Math.min(127, r));
    }
  }
  return {
    q: { dtype: "int8", shape: [...t.shape], data: q },
    scale: { dtype: "float32", shape: [C], data: scale },
  };
}

/** Inverse of {@link quantizeInt8PerChannel}: float32 q · scale[c], computed in float32. */
export function dequantizeInt8PerChannel(q: Tensor, scale: Tensor): F32 {
  if (q.dtype !== "int8" || scale.dtype !== "float32") {
    throw new CorruptFileError(
      `dequantize: expected int8 values and float32 scales, got ${q.dtype}/${scale.dtype}`,
    );
  }
  const C = q.shape[0];
  if (q.shape.length < 1 || scale.shape.length !== 1 || scale.shape[0] !== C || C < 1) {
    throw new CorruptFileError(
      `dequantize: scale shape [${scale.shape}] does not match tensor shape [${q.shape}]`,
    );
  }
  const qd = q.data as Int8Array;
  const sd = scale.data as Float32Array;
  const row = qd.length / C;
  const out = new Float32Array(qd.length);
  for (let c = 0; c < C; c++) {
    const s = sd[c];
    for (let i = c * row; i < (c + 1) * row; i++) out[i] = qd[i] * s;
  }
  return { dtype: "float32", shape: [...q.shape], data: out };
}

/**
 * Turn stored bundle tensors into float32 weights: F16/BF16/F64 → F32, int8 + `<key>.__scale` → F32,
 * other dtypes unchanged, scale tensors dropped. An orphan scale is a CorruptFileError.
 */
export function dequantize(raw: StateDict): StateDict {
  const out: StateDict = new Map();
  for (const [k, t] of raw) {
    if (k.endsWith(SCALE_SUFFIX)) {
      const base = raw.get(k.slice(0, -SCALE_SUFFIX.length));
      if (!base || base.dtype !== "int8") {
        throw new CorruptFileError(`bundle: scale "${k}" has no int8 tensor`);
      }
      continue;
    }
    const scale = raw.get(k + SCALE_SUFFIX);
    if (scale) out.set(k, dequantizeInt8PerChannel(t, scale));
    else if (t.dtype === "float16") out.set(k, halfTensorToF32(t));
    else out.set(k, isFloat(t) ? toF32(t) : t);
  }
  return out;
}

let halfLut: Float32Array | undefined;

/** F16 → F32 through a 65536-entry table (256 KiB): several times faster than per-element decoding. */
function halfTensorToF32(t: Tensor): F32 {
  if (!halfLut) {
    halfLut = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) halfLut[i] = halfToFloat(i);
  }
  const lut = halfLut;
  const h = t.data as Uint16Array;
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = lut[h[i]];
  return { dtype: "float32", shape: [...t.shape], data: out };
}

function toHalfIfSafe(t: Tensor): Tensor | undefined {
  const x = toF32(t).data;
  const h = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const w = floatToHalf(x[i]);
    if ((w & 0x7fff) === 0x7c00 && Number.isFinite(x[i])) return undefined; // would overflow to ±Inf
    h[i] = w;
  }
  return { dtype: "float16", shape: [...t.shape], data: h };
}

/** Apply the bundle's storage policy to a state_dict. */
function storeTensors(tensors: StateDict, dtype: BundleDType): StateDict {
  const out: StateDict = new Map();
  for (const [k, t] of tensors) {
    if (k.endsWith(SCALE_SUFFIX)) {
      throw new InvalidArgumentError(`bundle: tensor name "${k}" uses the reserved suffix`);
    }
    if (!t || typeof t !== "object" || !Array.isArray(t.shape) || t.data?.length !== numel(t.shape)) {
      throw new InvalidArgumentError(`bundle: tensor "${k}" does not have data matching its shape`);
    }
    if (!isFloat(t)) {
      out.set(k, t);
      continue;
    }
    const big = t.data.length >= MIN_COMPRESS_ELEMENTS;
    if (dtype === "fp16" && big) {
      out.set(k, toHalfIfSafe(t) ?? toF32(t));
    } else if (dtype === "int8" && big && t.shape.length >= 2) {
      const { q, scale } = quantizeInt8PerChannel(t);
      out.set(k, q);
      out.set(k + SCALE_SUFFIX, scale);
    } else {
      out.set(k, toF32(t));
    }
  }
  return out;
}

async function contentHash(
  metadata: Record<string, string>,
  entries: readonly SafetensorsEntry[],
  data: Uint8Array,
): Promise<string> {
  const meta = Object.keys(metadata).filter((k) => k !== "sha256").sort().map((k) => [k, metadata[k]]);
  const ordered = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  const tensors = ordered.map((e) => [e.name, DTYPE_TO_ST[e.dtype], e.shape, [e.begin, e.end]]);
  const head = new TextEncoder().encode(JSON.stringify({ metadata: meta, tensors }) + "\n");
  const buf = new Uint8Array(head.length + data.length);
  buf.set(head);
  buf.set(data, head.length);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", buf));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

function toJson(v: unknown, what: string): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch (e) {
    throw new InvalidArgumentError(`bundle: ${what} is not JSON-serialisable: ${(e as Error).message}`);
  }
  if (s === undefined) throw new InvalidArgumentError(`bundle: ${what} is not JSON-serialisable`);
  return s;
}

/** Serialise a bundle (see the module doc for the layout). Deterministic for equal input. */
export async function writeBundle(input: WriteBundleInput): Promise<Uint8Array> {
  const { model, tensors, dtype, meta = {} } = input;
  if (dtype !== "fp32" && dtype !== "fp16" && dtype !== "int8") {
    throw new InvalidArgumentError(`bundle: dtype must be fp32, fp16 or int8, got ${dtype}`);
  }
  if (!(tensors instanceof Map)) throw new InvalidArgumentError("bundle: tensors must be a Map (StateDict)");
  const stored = storeTensors(tensors, dtype);
  const { entries, data } = layoutStateDict(stored);
  const metadata: Record<string, string> = {
    format: BUNDLE_FORMAT,
    format_version: BUNDLE_FORMAT_VERSION,
    dtype,
    model: toJson(model, "model"),
    meta: toJson(meta, "meta"),
  };
  metadata.sha256 = await contentHash(metadata, entries, data);
  return assembleSafetensors(entries, data, metadata);
}

function notBundle(why: string): never {
  throw new CorruptFileError(`not a repmlp-edge bundle (${why})`, {
    hint: "pass a file written by `deno task convert`",
  });
}

/**
 * Load and verify a bundle. Truncated or damaged structure → CorruptFileError; content that does not
 * match its SHA-256 → IntegrityError; a newer format version → UnsupportedError.
 */
export async function readBundle(bytes: Uint8Array, opts: { dequantize?: boolean } = {}): Promise<Bundle> {
  if (bytes.length < 9) notBundle(`file is only ${bytes.length} bytes`);
  let layout: SafetensorsLayout;
  if (!isSafetensors(bytes)) {
    // A sane length with '{' but too few bytes is a truncated bundle; anything else is another format.
    const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getUint32(0, true);
    const hi = new DataView(bytes.buffer, bytes.byteOffset, 8).getUint32(4, true);
    if (hi === 0 && n >= 2 && n <= 100_000_000 && bytes[8] === 0x7b) {
      throw new CorruptFileError(
        `bundle: truncated: header needs ${n} bytes, file has ${bytes.length - 8} after the length`,
      );
    }
    notBundle("no safetensors header");
  }
  try {
    layout = parseSafetensors(bytes);
  } catch (e) {
    if (e instanceof CorruptFileError) {
      throw new CorruptFileError(`bundle: corrupt or truncated: ${e.message}`, { cause: e, hint: e.hint });
    }
    throw e;
  }
  const md = layout.metadata;
  if (md.format !== BUNDLE_FORMAT) notBundle(`format is ${JSON.stringify(md.format ?? null)}`);
  if (md.format_version !== BUNDLE_FORMAT_VERSION) {
    throw new UnsupportedError(
      `bundle: format_version ${md.format_version} is not supported (this kit reads ${BUNDLE_FORMAT_VERSION})`,
      "upgrade the kit or re-convert the model",
    );
  }
  const dtype = md.dtype as BundleDType;
  if (dtype !== "fp32" && dtype !== "fp16" && dtype !== "int8") {
    throw new CorruptFileError(`bundle: unknown dtype ${JSON.stringify(md.dtype)}`);
  }
  if (typeof md.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(md.sha256)) {
    throw new CorruptFileError("bundle: sha256 is missing or malformed");
  }
  const actual = await contentHash(md, layout.entries, layout.data);
  if (actual !== md.sha256) {
    throw new IntegrityError(`bundle: content SHA-256 ${actual} does not match the recorded ${md.sha256}`);
  }
  let model: unknown;
  let meta: unknown;
  try {
    model = JSON.parse(md.model);
    meta = JSON.parse(md.meta);
  } catch {
    throw new CorruptFileError("bundle: model/meta metadata is not valid JSON");
  }
  if (typeof meta !== "object" || meta === null || Array.isArray(meta)) {
    throw new CorruptFileError("bundle: meta is not a JSON object");
  }
  const raw: StateDict = new Map();
  for (const e of layout.entries) raw.set(e.name, entryTensor(layout, e));
  const deq = dequantize(raw); // validates scale pairing even when the caller wants raw tensors
  return {
    model,
    meta: meta as Record<string, unknown>,
    dtype,
    tensors: opts.dequantize === false ? raw : deq,
    raw,
    sha256: md.sha256,
    metadata: { ...md },
  };
}
