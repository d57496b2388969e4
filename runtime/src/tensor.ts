/**
 * Minimal dense tensor type shared by every reader, writer, fold and forward in the kit.
 * Data is always C-contiguous (row-major); readers apply source strides on the way in.
 */

/** Element types the kit reads or writes. fp16/bf16 payloads are kept as raw 16-bit words. */
export type DType =
  | "float32"
  | "float64"
  | "float16"
  | "bfloat16"
  | "int64"
  | "int32"
  | "int16"
  | "int8"
  | "uint8"
  | "bool";

/** Typed-array storage matching a {@link DType}. */
export type TensorData =
  | Float32Array
  | Float64Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

/** A C-contiguous tensor. */
export interface Tensor {
  /** Element type. */
  dtype: DType;
  /** Dimensions (`[]` for a scalar). */
  shape: number[];
  /** Elements in C order. */
  data: TensorData;
}

/** Float32 tensor, the working type of the fold and the reference forward. */
export interface F32 extends Tensor {
  /** Always float32. */
  dtype: "float32";
  /** Elements in C order. */
  data: Float32Array;
}

/** Ordered mapping from state_dict key to tensor (insertion order = file order). */
export type StateDict = Map<string, Tensor>;

/** Number of elements of a shape (1 for a scalar shape `[]`). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Bytes per element for a dtype. */
export function dtypeBytes(dtype: DType): number {
  switch (dtype) {
    case "float64":
    case "int64":
      return 8;
    case "float32":
    case "int32":
      return 4;
    case "float16":
    case "bfloat16":
    case "int16":
      return 2;
    default:
      return 1;
  }
}

/** Make a float32 tensor (zero-filled when no data is given). */
export function f32(shape: readonly number[], data?: Float32Array | number[]): F32 {
  const n = numel(shape);
  const d = data instanceof Float32Array ? data : data ? Float32Array.from(data) : new Float32Array(n);
  if (d.length !== n) throw new RangeError(`f32: shape [${shape}] needs ${n} elements, got ${d.length}`);
  return { dtype: "float32", shape: [...shape], data: d };
}

/** IEEE half → float, exact. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** float → IEEE half, round to nearest even (overflow → ±Inf). */
export function floatToHalf(v: number): number {
  f32buf[0] = v;
  const x = u32buf[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let hm = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (hm & 1))) hm++;
    return sign | hm;
  }
  let hm = mant >> 13;
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (hm & 1))) {
    hm++;
    if (hm === 0x400) {
      hm = 0;
      e++;
      if (e >= 31) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | hm;
}

/** bfloat16 word → float. */
export function bf16ToFloat(h: number): number {
  u32buf[0] = h << 16;
  return f32buf[0];
}

/** Convert any numeric tensor to float32 (copying). int64 values beyond 2^53 lose precision. */
export function toF32(t: Tensor): F32 {
  if (t.dtype === "float32") return t as F32;
  const n = t.data.length;
  const out = new Float32Array(n);
  const d = t.data;
  if (t.dtype === "float16") { for (let i = 0; i < n; i++) out[i] = halfToFloat((d as Uint16Array)[i]); }
  else if (t.dtype === "bfloat16") {
    for (let i = 0; i < n; i++) {
      out[i] = bf16ToFloat((d as Uint16Array)[i]);
    }
  } else if (t.dtype === "int64") {
    for (let i = 0; i < n; i++) {
      out[i] = Number((d as BigInt64Array)[i]);
    }
  } else for (let i = 0; i < n; i++) out[i] = Number(d[i]);
  return { dtype: "float32", shape: [...t.shape], data: out };
}

/** Max |a-b| over two equally long arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`maxAbsDiff: lengths ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** Max |a| over an array. */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
