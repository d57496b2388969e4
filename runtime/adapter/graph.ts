/**
 * Bundle → the ONNX graph `createSession` builds for it on wasm/native (float32 unless an int8 bundle
 * runs "dynamic"; partition FC as MatMul) and its served-model info. One function for the edge build
 * (graphs built at build time) and the Workers entry (graph built from the compact bundle on first use),
 * so every target runs the same graph as `deno task serve`.
 */
import "../src/arch/kit.ts"; // registers the kit's own architectures that bundles may name
import { loadBundle, type LoadedModel } from "../src/deploy_model.ts";
import { buildOnnx } from "../src/onnx/graph.ts";
import { type ServedModelInfo, servedModelInfo } from "../src/server/model_info.ts";
import type { ServedEntry } from "../src/server/manifest.ts";

/** How int8 bundles run: dequantised to float32 ("weights", as serve) or int8 MatMulInteger ("dynamic"). */
export type Int8Mode = "weights" | "dynamic";

/** The graph and info of a bundle, plus the loaded bundle. */
export async function graphFromBundle(
  bytes: Uint8Array,
  entry: ServedEntry,
  int8: Int8Mode = "weights",
): Promise<{ info: ServedModelInfo; onnx: Uint8Array; bundle: LoadedModel }> {
  const b = await loadBundle(bytes);
  const info = servedModelInfo(b, entry);
  return { info, onnx: servedGraph(b, info.inputSize, int8), bundle: b };
}

/** The ONNX graph of a loaded bundle at the served input size. */
export function servedGraph(b: LoadedModel, inputSize: [number, number, number], int8: Int8Mode): Uint8Array {
  const precision = b.dtype === "int8" && int8 === "dynamic" ? "int8-dynamic" : "fp32";
  return buildOnnx(b.desc, b.tensors, { inputHW: [inputSize[1], inputSize[2]], precision, fc3: "matmul" })
    .bytes;
}

/** Bundle bytes → its served graph (Workers: on the model's first use). */
export async function graphOfBundle(
  bytes: Uint8Array,
  inputSize: [number, number, number],
  int8: Int8Mode = "weights",
): Promise<Uint8Array> {
  return servedGraph(await loadBundle(bytes), inputSize, int8);
}
