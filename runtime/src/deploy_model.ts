/**
 * A deploy-mode model ready to run: a bundle decoded into its description, float32 weights and
 * meta. The single place that turns bundle bytes into something the runtimes and the app use.
 */
import type { ModelDesc } from "./arch/ir.ts";
import { CorruptFileError } from "./errors.ts";
import { type BundleDType, readBundle, writeBundle } from "./io/bundle.ts";
import { type ConvertResult, descFromRecord, type ModelRecord, recordOf } from "./convert.ts";
import type { StateDict } from "./tensor.ts";
import { detectMode } from "./params.ts";

/** Preprocessing recorded in a bundle's meta (applied to uint8 RGB/grey images). */
export interface Preprocess {
  /** Input layout the model wants, e.g. [3, 96, 96]. */
  input: [number, number, number];
  /** Per-channel mean/std applied to pixel/255. */
  mean: number[];
  std: number[];
}

/** A loaded deploy-mode model. */
export interface LoadedModel {
  /** Architecture description rebuilt from the bundle's record. */
  desc: ModelDesc;
  /** Deploy-mode weights dequantized to float32. */
  tensors: StateDict;
  /** Tensors as stored (fp16 words / int8 + scales), for runtimes that keep them compact. */
  raw: StateDict;
  /** Storage precision of the bundle. */
  dtype: BundleDType;
  /** Free-form meta (preprocess, labels, threshold, provenance …). */
  meta: Record<string, unknown>;
  /** Verified content hash. */
  sha256: string;
}

/** Decode and verify a bundle (throws CorruptFileError / IntegrityError / ArchMismatchError). */
export async function loadBundle(bytes: Uint8Array): Promise<LoadedModel> {
  const b = await readBundle(bytes);
  const rec = b.model as ModelRecord;
  if (!rec || typeof rec !== "object" || typeof rec.arch !== "string" || typeof rec.kwargs !== "object") {
    throw new CorruptFileError("bundle: model record has no arch/kwargs");
  }
  const desc = descFromRecord(rec);
  if (detectMode(desc, b.tensors) !== "deploy") {
    throw new CorruptFileError("bundle: weights are not in deploy layout");
  }
  return { desc, tensors: b.tensors, raw: b.raw, dtype: b.dtype, meta: b.meta, sha256: b.sha256 };
}

/** Serialise a conversion result as a bundle. */
export function bundleFromConversion(
  r: Pick<ConvertResult, "desc" | "deploy">,
  dtype: BundleDType,
  meta: Record<string, unknown> = {},
): Promise<Uint8Array> {
  return writeBundle({ model: recordOf(r.desc), tensors: r.deploy, dtype, meta });
}
