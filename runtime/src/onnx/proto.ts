/**
 * Thin layer over the generated ONNX protobuf classes (`onnx-proto`, static protobufjs code: no
 * `eval`/`Function`, so it also runs on Cloudflare Workers). {@link GraphBuilder} collects nodes and
 * initializers and serialises a `ModelProto`.
 */
import onnxProto from "onnx-proto";
import { floatToHalf } from "../tensor.ts";

const { onnx } = onnxProto;

/** ONNX `TensorProto.DataType` values used here. */
export const DT = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, FLOAT16: 10 } as const;

/** Attribute values accepted by {@link GraphBuilder.op}. Arrays of integers become INTS. */
export type Attr = number | number[] | string | { f: number } | { fs: number[] };

/** Floating precision of the activations and float initializers of a graph. */
export type Compute = "fp32" | "fp16";

/** Opset the builder targets (axes are attributes for Reduce*, opset 13 quantisation ops). */
export const OPSET = 17;

function attribute(name: string, v: Attr): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === "string") return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === "number") return { name, type: T.INT, i: v };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ("f" in v) return { name, type: T.FLOAT, f: v.f };
  return { name, type: T.FLOATS, floats: v.fs };
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Builds one graph with a single float input and output whose first axis is the dynamic batch. */
export class GraphBuilder {
  readonly nodes: onnxProto.onnx.INodeProto[] = [];
  readonly inits: onnxProto.onnx.ITensorProto[] = [];
  /** Element type of activations and of float weights. */
  readonly compute: Compute;
  #names = new Map<string, number>();
  #i64 = new Map<string, string>();

  constructor(compute: Compute = "fp32") {
    this.compute = compute;
  }

  /** A fresh value name derived from `hint`. */
  fresh(hint: string): string {
    const base = hint.replace(/[^A-Za-z0-9_.:/-]/g, "_") || "v";
    const n = this.#names.get(base) ?? 0;
    this.#names.set(base, n + 1);
    return n === 0 ? base : `${base}__${n}`;
  }

  /** Float initializer stored in the compute precision. */
  float(hint: string, data: Float32Array, dims: number[]): string {
    if (this.compute === "fp16") {
      const h = new Uint16Array(data.length);
      for (let i = 0; i < data.length; i++) h[i] = floatToHalf(data[i]);
      return this.raw(hint, DT.FLOAT16, h, dims);
    }
    return this.raw(hint, DT.FLOAT, data, dims);
  }

  /** Float32 initializer regardless of the compute precision (e.g. quantisation scales). */
  float32(hint: string, data: Float32Array, dims: number[]): string {
    return this.raw(hint, DT.FLOAT, data, dims);
  }

  /** int64 constant (shapes, axes); identical values are shared. */
  i64(values: number[]): string {
    const k = values.join(",");
    let name = this.#i64.get(k);
    if (!name) {
      name = this.raw("shape", DT.INT64, BigInt64Array.from(values.map(BigInt)), [values.length]);
      this.#i64.set(k, name);
    }
    return name;
  }

  /** Initializer from raw little-endian data. */
  raw(hint: string, dataType: number, data: ArrayBufferView, dims: number[]): string {
    const name = this.fresh(hint);
    this.inits.push({ name, dims, dataType, rawData: bytesOf(data).slice() });
    return name;
  }

  /** Append a node; returns its output names (`nOut` of them). */
  ops(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, nOut = 1, domain = ""): string[] {
    const outs = Array.from({ length: nOut }, () => this.fresh(opType.toLowerCase()));
    this.nodes.push({
      opType,
      domain,
      input: inputs,
      output: outs,
      name: outs[0],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outs;
  }

  /** Append a single-output node. */
  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}): string {
    return this.ops(opType, inputs, attrs)[0];
  }

  /** Reshape to `shape` (one entry may be -1). */
  reshape(x: string, shape: number[]): string {
    return this.op("Reshape", [x, this.i64(shape)]);
  }

  /** Serialise: `input` has shape [batch, ...inShape], `output` [batch, ...outShape]. */
  finish(
    input: string,
    inShape: number[],
    output: string,
    outShape: number[],
    meta: Record<string, string> = {},
  ): Uint8Array {
    const vi = (name: string, shape: number[]): onnxProto.onnx.IValueInfoProto => ({
      name,
      type: {
        tensorType: {
          elemType: DT.FLOAT,
          shape: { dim: [{ dimParam: "batch" }, ...shape.map((d) => ({ dimValue: d }))] },
        },
      },
    });
    const graph = onnx.GraphProto.create({
      name: "repmlp_edge",
      node: this.nodes,
      initializer: this.inits,
      input: [vi(input, inShape)],
      output: [vi(output, outShape)],
    });
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: "repmlp-edge",
      producerVersion: "0.1.0",
      opsetImport: [{ domain: "", version: OPSET }],
      graph,
      metadataProps: Object.entries(meta).map(([key, value]) => ({ key, value })),
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

/** Decode a serialised model (tests and `export-onnx --check`). */
export function decodeModel(bytes: Uint8Array): onnxProto.onnx.ModelProto {
  return onnx.ModelProto.decode(bytes);
}
