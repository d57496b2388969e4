/** Internal helpers shared by the readers: typed-array construction and strided gathers. */
import { CorruptFileError, UnsupportedError } from "../errors.ts";
import { type DType, dtypeBytes, type TensorData } from "../tensor.ts";

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Readers reinterpret little-endian file bytes directly; every target platform is little-endian. */
export function assertLittleEndianHost(): void {
  if (!LITTLE_ENDIAN) throw new UnsupportedError("big-endian hosts are not supported");
}

/** Copy `bytes` (any alignment) into a fresh typed array of `dtype`. Length must be a multiple of the item size. */
export function typedFromBytes(dtype: DType, bytes: Uint8Array): TensorData {
  assertLittleEndianHost();
  const size = dtypeBytes(dtype);
  if (bytes.length % size) {
    throw new CorruptFileError(`${bytes.length} bytes is not a whole number of ${dtype}`);
  }
  const buf = bytes.slice().buffer; // fresh, aligned ArrayBuffer
  const n = bytes.length / size;
  return viewAs(dtype, buf, n);
}

/** Allocate a zeroed typed array of `dtype` and `n` elements. */
export function allocTyped(dtype: DType, n: number): TensorData {
  return viewAs(dtype, new ArrayBuffer(n * dtypeBytes(dtype)), n);
}

function viewAs(dtype: DType, buf: ArrayBuffer, n: number): TensorData {
  switch (dtype) {
    case "float32":
      return new Float32Array(buf, 0, n);
    case "float64":
      return new Float64Array(buf, 0, n);
    case "float16":
    case "bfloat16":
      return new Uint16Array(buf, 0, n);
    case "int64":
      return new BigInt64Array(buf, 0, n);
    case "int32":
      return new Int32Array(buf, 0, n);
    case "int16":
      return new Int16Array(buf, 0, n);
    case "int8":
      return new Int8Array(buf, 0, n);
    case "uint8":
    case "bool":
      return new Uint8Array(buf, 0, n);
  }
}

/** Raw little-endian bytes of a typed array (a view, not a copy). */
export function bytesOf(data: TensorData): Uint8Array {
  assertLittleEndianHost();
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Whether a typed array matches a dtype's storage class. */
export function dataMatches(dtype: DType, data: unknown): boolean {
  switch (dtype) {
    case "float32":
      return data instanceof Float32Array;
    case "float64":
      return data instanceof Float64Array;
    case "float16":
    case "bfloat16":
      return data instanceof Uint16Array;
    case "int64":
      return data instanceof BigInt64Array;
    case "int32":
      return data instanceof Int32Array;
    case "int16":
      return data instanceof Int16Array;
    case "int8":
      return data instanceof Int8Array;
    case "uint8":
    case "bool":
      return data instanceof Uint8Array;
    default:
      return false;
  }
}

/**
 * Gather `src[offset + Σ i_k·stride_k]` over the index space of `shape` into C order.
 * The caller has already checked that every index lies inside `src`.
 */
export function gatherStrided<T extends TensorData>(
  src: T,
  dst: T,
  shape: readonly number[],
  stride: readonly number[],
  offset: number,
): void {
  const nd = shape.length;
  const total = dst.length;
  if (total === 0) return;
  if (nd === 0) {
    dst[0] = src[offset];
    return;
  }
  // Walk the last axis in a tight loop, odometer over the rest.
  const last = nd - 1;
  const inner = shape[last];
  const sInner = stride[last];
  const idx = new Array<number>(nd).fill(0);
  let base = offset;
  let o = 0;
  while (o < total) {
    let s = base;
    for (let i = 0; i < inner; i++, s += sInner) dst[o++] = src[s];
    let k = last - 1;
    for (; k >= 0; k--) {
      idx[k]++;
      base += stride[k];
      if (idx[k] < shape[k]) break;
      base -= stride[k] * shape[k];
      idx[k] = 0;
    }
    if (k < 0) break;
  }
}

/** Largest element index touched by (shape, stride, offset); -1 for an empty tensor. */
export function maxStridedIndex(shape: readonly number[], stride: readonly number[], offset: number): number {
  let m = offset;
  for (let k = 0; k < shape.length; k++) {
    if (shape[k] === 0) return -1;
    m += (shape[k] - 1) * stride[k];
  }
  return m;
}

/** True when stride is the C-contiguous stride of shape (size-1 axes ignored). */
export function isCContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expect = 1;
  for (let k = shape.length - 1; k >= 0; k--) {
    if (shape[k] !== 1 && stride[k] !== expect) return false;
    expect *= shape[k];
  }
  return true;
}
