/**
 * Bundles → served models: a {@link FaceModel} /
 * {@link ClassifierModel} built on a runtime session (onnxruntime-web WebGPU/WASM, onnxruntime-node,
 * or the reference forward). Platform-neutral: callers read the bytes.
 */
import "../arch/kit.ts"; // registers the kit's own architectures (RepMLPFaceNet …) that bundles may name
import { loadBundle } from "../deploy_model.ts";
import { type Backend, createSession, type Session, type SessionOptions } from "../backends/mod.ts";
import { f32 } from "../tensor.ts";
import type { ManifestEntry } from "./manifest.ts";
import type { ClassifierModel, FaceModel } from "./served_model.ts";
import { servedModelFromForward, servedModelInfo } from "./model_info.ts";

export {
  batchingForward,
  servedModelFromForward,
  type ServedModelInfo,
  servedModelInfo,
} from "./model_info.ts";
export {
  DEFAULT_BUNDLE_DTYPE,
  type ManifestEntry,
  parseManifest,
  pickDefault,
  type WeightsManifest,
} from "./manifest.ts";

/** A served model plus its session (dispose it on shutdown). */
export interface LoadedServedModel {
  /** The wrapped model: a FaceModel or a ClassifierModel, per `task`. */
  model: FaceModel | ClassifierModel;
  /** Which kind `model` is. */
  task: "face" | "classifier";
  /** The runtime session running it. */
  session: Session;
  /** Why `auto` fell back from WebGPU, if it did. */
  note: string | null;
}

/**
 * Load a bundle and wrap it for the app ({@link servedModelInfo}, then a session on `opts.backend`).
 */
export async function servedModelFromBundle(
  bytes: Uint8Array,
  entry: Pick<ManifestEntry, "name" | "task" | "threshold" | "labels" | "metrics">,
  opts: {
    backend?: Backend;
    log?: (m: string) => void;
    maxBatch?: number;
    /** Where ORT-web finds its wasm binary (edge bundles: a compiled module on Workers, bytes on Deno). */
    ortWasm?: SessionOptions["ortWasm"];
    /** int8 bundles: dequantise at load (default) or run int8 MatMulInteger ("dynamic"). */
    quant?: "weights" | "dynamic";
  } = {},
): Promise<LoadedServedModel> {
  const m = await loadBundle(bytes);
  const info = servedModelInfo(m, entry);
  const session = await createSession(
    { desc: m.desc, tensors: m.tensors, dtype: m.dtype, quant: opts.quant },
    {
      backend: opts.backend ?? "auto",
      inputHW: [info.inputSize[1], info.inputSize[2]],
      log: opts.log,
      ortWasm: opts.ortWasm,
    },
  );
  const model = servedModelFromForward(
    info,
    async (x, shape) => (await session.run(f32(shape, x))).data,
    session.backend,
    opts.maxBatch,
  );
  return { model, task: info.task, session, note: session.note };
}
