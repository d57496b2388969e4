/**
 * NumPy `.npy` (format 1.0/2.0/3.0) and `.npz` reader/writer for plain numeric arrays.
 *
 * Written here rather than taken from npm (npyjs, numpy-parser): the kit needs a writer as well, Fortran-order
 * handling, and strict header/size checks for untrusted files; the format is small.
 */
import { zipSync } from "fflate";
import { CorruptFileError, InvalidArgumentError, UnsupportedError } from "../errors.ts";
import { type DType, dtypeBytes, numel, type StateDict, type Tensor } from "../tensor.ts";
import { allocTyped, bytesOf, dataMatches, gatherStrided, typedFromBytes } from "./dtypes.ts";
import { openZip } from "./zip.ts";

const DESCR_TO_DTYPE: Record<string, DType> = {
  "<f4": "float32",
  "<f8": "float64",
  "<f2": "float16",
  "<i8": "int64",
  "<i4": "int32",
  "<i2": "int16",
  "|i1": "int8",
  "<i1": "int8",
  "|u1": "uint8",
  "<u1": "uint8",
  "|b1": "bool",
};

const DTYPE_TO_DESCR: Partial<Record<DType, string>> = {
  float32: "<f4",
  float64: "<f8",
  float16: "<f2",
  int64: "<i8",
  int32: "<i4",
  int16: "<i2",
  int8: "|i1",
  uint8: "|u1",
  bool: "|b1",
};

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

function corrupt(msg: string): never {
  throw new CorruptFileError(`npy: ${msg}`, { hint: "re-save the array with numpy.save" });
}

/** True when bytes start with the `.npy` magic. */
export function isNpy(bytes: Uint8Array): boolean {
  return bytes.length >= 6 && MAGIC.every((m, i) => bytes[i] === m);
}

type HeaderValue = string | boolean | number[];

/** Parse the header's Python dict literal: string keys; values are strings, booleans or int tuples. */
function parseHeader(s: string): Map<string, HeaderValue> {
  let i = 0;
  const ws = () => {
    while (i < s.length && " \t\r\n".includes(s[i])) i++;
  };
  const expect = (c: string) => {
    ws();
    if (s[i] !== c) corrupt(`header: expected '${c}' at ${i}`);
    i++;
  };
  const str = (): string => {
    ws();
    const q = s[i];
    if (q !== "'" && q !== '"') corrupt(`header: expected a string at ${i}`);
    const e = s.indexOf(q, i + 1);
    if (e < 0) corrupt("header: unterminated string");
    const v = s.slice(i + 1, e);
    i = e + 1;
    return v;
  };
  const value = (): HeaderValue => {
    ws();
    if (s[i] === "'" || s[i] === '"') return str();
    if (s.startsWith("True", i)) {
      i += 4;
      return true;
    }
    if (s.startsWith("False", i)) {
      i += 5;
      return false;
    }
    if (s[i] === "(") {
      i++;
      const dims: number[] = [];
      for (;;) {
        ws();
        if (s[i] === ")") {
          i++;
          return dims;
        }
        const m = /^\d{1,15}L?/.exec(s.slice(i, i + 17));
        if (!m) corrupt(`header: bad shape element at ${i}`);
        dims.push(parseInt(m[0], 10));
        i += m[0].length;
        ws();
        if (s[i] === ",") i++;
        else if (s[i] !== ")") corrupt(`header: expected ',' or ')' at ${i}`);
      }
    }
    if (s[i] === "[") throw new UnsupportedError("npy: structured dtypes are not supported");
    corrupt(`header: unexpected value at ${i}`);
  };
  const out = new Map<string, HeaderValue>();
  expect("{");
  for (;;) {
    ws();
    if (s[i] === "}") {
      i++;
      break;
    }
    const k = str();
    expect(":");
    if (out.has(k)) corrupt(`header: duplicate key ${k}`);
    out.set(k, value());
    ws();
    if (s[i] === ",") i++;
    else if (s[i] !== "}") corrupt(`header: expected ',' or '}' at ${i}`);
  }
  ws();
  if (i !== s.length) corrupt("header: trailing characters after the dict");
  return out;
}

/**
 * Parse one `.npy` file into a C-contiguous tensor. `fortran_order: True` arrays are reordered to C order.
 * Big-endian, object and structured dtypes are refused with UnsupportedError.
 */
export function readNpy(bytes: Uint8Array): Tensor {
  if (!isNpy(bytes)) corrupt("missing \\x93NUMPY magic");
  if (bytes.length < 10) corrupt("file too short");
  const major = bytes[6];
  let hlen: number;
  let start: number;
  if (major === 1) {
    hlen = bytes[8] | (bytes[9] << 8);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) corrupt("file too short");
    hlen = (bytes[8] | (bytes[9] << 8) | (bytes[10] << 16) | (bytes[11] << 24)) >>> 0;
    start = 12;
  } else {
    throw new UnsupportedError(`npy: format version ${major}.${bytes[7]} is not supported`);
  }
  if (start + hlen > bytes.length) corrupt(`header length ${hlen} runs past the end of the file`);
  let text: string;
  try {
    text = new TextDecoder(major === 3 ? "utf-8" : "latin1", { fatal: true }).decode(
      bytes.subarray(start, start + hlen),
    );
  } catch {
    corrupt("header is not valid text");
  }
  const h = parseHeader(text);
  const descr = h.get("descr");
  const fortran = h.get("fortran_order");
  const shape = h.get("shape");
  if (typeof descr !== "string" || typeof fortran !== "boolean" || !Array.isArray(shape)) {
    corrupt("header needs 'descr' (str), 'fortran_order' (bool) and 'shape' (tuple)");
  }
  const dtype = DESCR_TO_DTYPE[descr];
  if (!dtype) {
    throw new UnsupportedError(
      `npy: dtype '${descr}' is not supported`,
      "use little-endian f2/f4/f8, i1/i2/i4/i8, u1 or b1",
    );
  }
  const n = numel(shape);
  if (!Number.isSafeInteger(n)) corrupt("shape too large");
  const item = dtypeBytes(dtype);
  const dataStart = start + hlen;
  if (bytes.length - dataStart !== n * item) {
    corrupt(`data is ${bytes.length - dataStart} bytes, shape [${shape}] of ${descr} needs ${n * item}`);
  }
  const flat = typedFromBytes(dtype, bytes.subarray(dataStart));
  if (!fortran || shape.length < 2) return { dtype, shape: [...shape], data: flat };
  // Fortran order: element (i0..ik) is at Σ i_j·Π_{m<j} shape_m.
  const stride: number[] = [];
  let s = 1;
  for (const d of shape) {
    stride.push(s);
    s *= d;
  }
  const data = allocTyped(dtype, n);
  gatherStrided(flat, data, shape, stride, 0);
  return { dtype, shape: [...shape], data };
}

/** Serialise a tensor as a C-order `.npy` (format 1.0, or 2.0 for huge headers). bfloat16 has no NumPy dtype. */
export function writeNpy(t: Tensor): Uint8Array {
  const descr = DTYPE_TO_DESCR[t.dtype];
  if (!descr) throw new UnsupportedError(`npy: ${t.dtype} has no NumPy dtype`, "convert to float32 first");
  if (!dataMatches(t.dtype, t.data) || t.data.length !== numel(t.shape)) {
    throw new InvalidArgumentError(`npy: tensor data does not match dtype ${t.dtype} and shape [${t.shape}]`);
  }
  const shp = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(", ")})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shp}, }`;
  // NumPy pads with spaces so that the data starts on a 64-byte boundary, then '\n'.
  const v1 = header.length + 11 <= 0xffff;
  const pre = v1 ? 10 : 12;
  const total = Math.ceil((pre + header.length + 1) / 64) * 64;
  header = header.padEnd(total - pre - 1, " ") + "\n";
  const data = bytesOf(t.data);
  const out = new Uint8Array(total + data.length);
  out.set(MAGIC, 0);
  out[6] = v1 ? 1 : 2;
  out[7] = 0;
  const hl = header.length;
  out[8] = hl & 0xff;
  out[9] = (hl >> 8) & 0xff;
  if (!v1) {
    out[10] = (hl >> 16) & 0xff;
    out[11] = (hl >>> 24) & 0xff;
  }
  for (let i = 0; i < hl; i++) out[pre + i] = header.charCodeAt(i);
  out.set(data, total);
  return out;
}

/** Read a `numpy.savez`/`savez_compressed` archive: member `<key>.npy` → key, in archive order. */
export function readNpz(bytes: Uint8Array): StateDict {
  const zip = openZip(bytes);
  const out: StateDict = new Map();
  for (const e of zip.entries) {
    if (!e.name.endsWith(".npy")) corrupt(`npz member "${e.name}" is not a .npy file`);
    out.set(e.name.slice(0, -4), readNpy(zip.read(e)));
  }
  return out;
}

/** Write a state_dict as an uncompressed `.npz` (like `numpy.savez`), keys in insertion order. */
export function writeNpz(sd: StateDict): Uint8Array {
  const files: Record<string, [Uint8Array, { level: 0 }]> = {};
  for (const [k, t] of sd) files[`${k}.npy`] = [writeNpy(t), { level: 0 }];
  // Fixed mtime keeps the archive byte-for-byte deterministic.
  return zipSync(files, { mtime: new Date(Date.UTC(1980, 0, 2, 12)) });
}
