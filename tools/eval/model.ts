/**
 * What `deno task eval` evaluates: a bundle (deploy weights, on the kit's ORT session) or a
 * training checkpoint of `deno task train` (its tfjs training graph, eval-mode BN), behind one
 * predict function.
 */
import { descFromRecord, MODEL_METADATA_KEY, type ModelRecord } from "../../runtime/src/convert.ts";
import { bundleFromConversion, loadBundle, type LoadedModel } from "../../runtime/src/deploy_model.ts";
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import { readSafetensors } from "../../runtime/src/io/safetensors.ts";
import { detectMode } from "../../runtime/src/params.ts";
import { createSession } from "../../runtime/src/backends/mod.ts";
import { f32 } from "../../runtime/src/tensor.ts";
import { type BackendName, initBackend } from "../train/tfjs_backend.ts";
import type { Predict } from "../train/evaluate.ts";
import { TrainGraph } from "../train/tfjs_graph.ts";
import { predictBatch } from "../train/trainer.ts";

/** A model opened for evaluation. */
export interface EvalModel {
  meta: Record<string, unknown>;
  predict: Predict;
  /** What runs it, for the report. */
  engine: string;
  /** The bundle, when it is one (null for a training checkpoint). */
  bundle: LoadedModel | null;
  dispose(): Promise<void>;
}

/**
 * Open `bytes` as a bundle or, failing that, as a training checkpoint that names its architecture
 * (the bundle's errors are reported when it is neither). `backend`: ORT's for bundles (default
 * wasm), tfjs's for checkpoints.
 */
export async function openEvalModel(bytes: Uint8Array, backend?: string): Promise<EvalModel> {
  let bundle: LoadedModel;
  try {
    bundle = await loadBundle(bytes);
  } catch (e) {
    return await openCheckpoint(bytes, backend, e);
  }
  const s = await createSession(bundle, { backend: (backend ?? "wasm") as "wasm" });
  return {
    meta: bundle.meta,
    predict: async (x, shape) => (await s.run(f32(shape, x))).data,
    engine: `${s.provider} (${bundle.dtype} bundle, ${s.precision} graph)`,
    bundle,
    dispose: () => s.dispose(),
  };
}

async function openCheckpoint(bytes: Uint8Array, backend: string | undefined, bundleError: unknown) {
  let st;
  try {
    st = readSafetensors(bytes);
  } catch {
    throw bundleError;
  }
  if (!st.metadata[MODEL_METADATA_KEY]) throw bundleError;
  const desc = descFromRecord(JSON.parse(st.metadata[MODEL_METADATA_KEY]) as ModelRecord);
  if (detectMode(desc, st.tensors) !== "train") {
    throw new InvalidArgumentError(
      "checkpoint is already deploy-mode; convert it to a bundle and evaluate that",
    );
  }
  const be = await initBackend((backend ?? "wasm") as BackendName);
  const g = new TrainGraph(desc, st.tensors);
  return {
    meta: JSON.parse(st.metadata.repmlp_edge_meta ?? "{}"),
    predict: ((x, shape) => predictBatch(g, x, shape)) as Predict,
    engine: `tfjs-${be} (training graph, eval-mode BN)`,
    bundle: null,
    dispose: () => Promise.resolve(g.dispose()),
  };
}

/** The bundle re-serialised with a verification threshold and its evidence in the meta. */
export function withThreshold(
  bundle: LoadedModel,
  dataset: string,
  v: { threshold: number; auc: number; tarAtFar: unknown; thresholdAtFar: unknown; bestAccuracy: number },
): Promise<Uint8Array> {
  const meta = {
    ...bundle.meta,
    threshold: v.threshold,
    verification: {
      dataset,
      auc: v.auc,
      tar_at_far: v.tarAtFar,
      threshold_at_far: v.thresholdAtFar,
      best_accuracy: v.bestAccuracy,
      evaluated_at: new Date().toISOString(),
    },
  };
  return bundleFromConversion({ desc: bundle.desc, deploy: bundle.tensors }, bundle.dtype, meta);
}
