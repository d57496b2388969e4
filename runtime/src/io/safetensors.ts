/**
 * safetensors reader/writer (https://github.com/huggingface/safetensors format):
 * 8-byte little-endian header length N, N bytes of JSON header, then the byte buffer.
 *
 * Written here: a search of npm turned up no maintained safetensors reader/writer to reuse, and the format
 * is small.
 * Validation follows the reference implementation: header ≤ 100 MB, offsets in range and tiling the
 * buffer exactly (no gaps, no overlaps), byte sizes equal to shape × dtype.
 */
import { CorruptFileError, InvalidArgumentError, UnsupportedError } from "../errors.ts";
import { type DType, dtypeBytes, numel, type StateDict, type Tensor } from "../tensor.ts";
import { bytesOf, dataMatches, typedFromBytes } from "./dtypes.ts";

/** safetensors dtype names handled here. */
export type SafetensorsDType = "F32" | "F64" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

const ST_TO_DTYPE: Record<SafetensorsDType, DType> = {
  F32: "float32",
  F64: "float64",
  F16: "float16",
  BF16: "bfloat16",
  I64: "int64",
  I32: "int32",
  I16: "int16",
  I8: "int8",
  U8: "uint8",
  BOOL: "bool",
};

/** Safetensors dtype name of each tensor dtype. */
export const DTYPE_TO_ST: Record<DType, SafetensorsDType> = {
  float32: "F32",
  float64: "F64",
  float16: "F16",
  bfloat16: "BF16",
  int64: "I64",
  int32: "I32",
  int16: "I16",
  int8: "I8",
  uint8: "U8",
  bool: "BOOL",
};

/** Largest accepted header, as in the reference implementation. */
export const MAX_HEADER_BYTES = 100_000_000;

/** One tensor's header record. Offsets are relative to the start of the byte buffer. */
export interface SafetensorsEntry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

/** A validated but not yet materialised file: header records in buffer order, metadata and the buffer. */
export interface SafetensorsLayout {
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
  /** The byte buffer (a view into the input). */
  data: Uint8Array;
}

function corrupt(msg: string): never {
  throw new CorruptFileError(`safetensors: ${msg}`, {
    hint: "the file is truncated or was not written as safetensors",
  });
}

/** True when bytes look like safetensors: a sane header length followed by `{`. */
export function isSafetensors(bytes: Uint8Array): boolean {
  if (bytes.length < 10) return false;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const n = dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
  return n >= 2 && n <= MAX_HEADER_BYTES && 8 + n <= bytes.length && bytes[8] === 0x7b;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parse and validate header and offsets without copying tensor data. */
export function parseSafetensors(bytes: Uint8Array): SafetensorsLayout {
  if (bytes.length < 8) corrupt(`file is ${bytes.length} bytes, shorter than the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const hi = dv.getUint32(4, true);
  const n = dv.getUint32(0, true);
  if (hi !== 0 || n > MAX_HEADER_BYTES) {
    corrupt(`header length ${hi * 2 ** 32 + n} exceeds ${MAX_HEADER_BYTES}`);
  }
  if (8 + n > bytes.length) corrupt(`header length ${n} runs past the end of the ${bytes.length}-byte file`);
  if (n < 2 || bytes[8] !== 0x7b) corrupt("header does not start with '{'");
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch {
    corrupt("header is not valid UTF-8 JSON");
  }
  if (!isPlainObject(header)) corrupt("header is not a JSON object");
  const data = bytes.subarray(8 + n);
  let metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, v] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (v === null) continue;
      if (!isPlainObject(v)) corrupt("__metadata__ is not an object");
      for (const [mk, mv] of Object.entries(v)) {
        if (typeof mv !== "string") corrupt(`__metadata__["${mk}"] is not a string`);
      }
      metadata = { ...(v as Record<string, string>) };
      continue;
    }
    if (!isPlainObject(v)) corrupt(`entry "${name}" is not an object`);
    const st = v.dtype;
    if (typeof st !== "string") corrupt(`entry "${name}" has no dtype`);
    if (!Object.hasOwn(ST_TO_DTYPE, st)) {
      throw new UnsupportedError(
        `safetensors: dtype ${st} of "${name}" is not supported`,
        `supported: ${Object.keys(ST_TO_DTYPE).join(", ")}`,
      );
    }
    const dtype = ST_TO_DTYPE[st as SafetensorsDType];
    const shape = v.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      corrupt(`entry "${name}" has a bad shape`);
    }
    const offs = v.data_offsets;
    if (
      !Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offs[0] > offs[1] || offs[1] > data.length
    ) {
      corrupt(`entry "${name}" has data_offsets outside the ${data.length}-byte buffer`);
    }
    const bytesNeeded = numel(shape) * dtypeBytes(dtype);
    if (bytesNeeded !== offs[1] - offs[0]) {
      corrupt(
        `entry "${name}": shape [${shape}] of ${st} needs ${bytesNeeded} bytes, offsets give ${
          offs[1] - offs[0]
        }`,
      );
    }
    entries.push({ name, dtype, shape: [...shape], begin: offs[0], end: offs[1] });
  }
  // Buffer order; stable, so equal (empty) ranges keep header order.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of entries) {
    if (e.begin !== pos) corrupt(`entry "${e.name}" starts at ${e.begin}, expected ${pos} (gap or overlap)`);
    pos = e.end;
  }
  if (pos !== data.length) corrupt(`tensors cover ${pos} bytes but the buffer has ${data.length}`);
  return { entries, metadata, data };
}

/** Copy one entry out of a layout as a tensor. */
export function entryTensor(layout: SafetensorsLayout, e: SafetensorsEntry): Tensor {
  return {
    dtype: e.dtype,
    shape: [...e.shape],
    data: typedFromBytes(e.dtype, layout.data.subarray(e.begin, e.end)),
  };
}

/** Read a safetensors file. Tensors come out in buffer order (= insertion order for files written here). */
export function readSafetensors(bytes: Uint8Array): { tensors: StateDict; metadata: Record<string, string> } {
  const layout = parseSafetensors(bytes);
  const tensors: StateDict = new Map();
  for (const e of layout.entries) tensors.set(e.name, entryTensor(layout, e));
  return { tensors, metadata: layout.metadata };
}

/** Plan the buffer for a state_dict: header records (insertion order) and the concatenated bytes. */
export function layoutStateDict(sd: StateDict): { entries: SafetensorsEntry[]; data: Uint8Array } {
  const entries: SafetensorsEntry[] = [];
  let pos = 0;
  for (const [name, t] of sd) {
    if (name === "__metadata__") {
      throw new InvalidArgumentError('safetensors: "__metadata__" cannot be a tensor name');
    }
    if (!Object.hasOwn(DTYPE_TO_ST, t.dtype) || !dataMatches(t.dtype, t.data)) {
      throw new InvalidArgumentError(
        `safetensors: tensor "${name}" has dtype ${t.dtype} but ${t.data?.constructor?.name} data`,
      );
    }
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || t.data.length !== numel(t.shape)) {
      throw new InvalidArgumentError(
        `safetensors: tensor "${name}" has ${t.data.length} elements for shape [${t.shape}]`,
      );
    }
    const len = t.data.byteLength;
    entries.push({ name, dtype: t.dtype, shape: [...t.shape], begin: pos, end: pos + len });
    pos += len;
  }
  const data = new Uint8Array(pos);
  let i = 0;
  for (const t of sd.values()) {
    data.set(bytesOf(t.data), entries[i].begin);
    i++;
  }
  return { entries, data };
}

/** JSON for one header record, with a fixed key order. */
export function entryJson(e: SafetensorsEntry): string {
  return `{"dtype":"${DTYPE_TO_ST[e.dtype]}","shape":${
    JSON.stringify(e.shape)
  },"data_offsets":[${e.begin},${e.end}]}`;
}

/** Assemble a file from records, buffer and metadata. The header is built by hand to keep record order. */
export function assembleSafetensors(
  entries: readonly SafetensorsEntry[],
  data: Uint8Array,
  metadata: Record<string, string> = {},
): Uint8Array {
  const parts: string[] = [];
  const metaKeys = Object.keys(metadata);
  if (metaKeys.length > 0) {
    for (const k of metaKeys) {
      if (typeof metadata[k] !== "string") {
        throw new InvalidArgumentError(`safetensors: metadata "${k}" is not a string`);
      }
    }
    parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  for (const e of entries) parts.push(`${JSON.stringify(e.name)}:${entryJson(e)}`);
  let header = new TextEncoder().encode(`{${parts.join(",")}}`);
  // Pad with spaces so the buffer starts 8-byte aligned, as the reference writer does.
  const padded = Math.ceil(header.length / 8) * 8;
  if (padded !== header.length) {
    const h = new Uint8Array(padded).fill(0x20);
    h.set(header);
    header = h;
  }
  if (header.length > MAX_HEADER_BYTES) {
    throw new InvalidArgumentError("safetensors: header would exceed 100 MB");
  }
  const out = new Uint8Array(8 + header.length + data.length);
  new DataView(out.buffer).setUint32(0, header.length, true);
  out.set(header, 8);
  out.set(data, 8 + header.length);
  return out;
}

/**
 * Serialise a state_dict. Deterministic: `__metadata__` first, then tensors in insertion order, data in
 * the same order with no padding between tensors (readers here copy, so alignment is not required).
 */
export function writeSafetensors(sd: StateDict, metadata: Record<string, string> = {}): Uint8Array {
  const { entries, data } = layoutStateDict(sd);
  return assembleSafetensors(entries, data, metadata);
}
