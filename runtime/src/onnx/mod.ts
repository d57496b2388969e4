/**
 * ONNX export: build an ONNX graph (deploy or training structure) from a model description and
 * its state_dict. Runs anywhere (no Deno/Node APIs); `scripts/export_onnx.ts` is the CLI.
 * @module
 */
export {
  buildOnnx,
  type BuildOptions,
  type BuiltGraph,
  type Fc3Impl,
  type Precision,
  resolveInput,
} from "./graph.ts";
export { type Attr, type Compute, decodeModel, DT, GraphBuilder, OPSET } from "./proto.ts";
