/**
 * The two ends of `deno task convert` as library code: read a checkpoint (any supported format)
 * and pack a conversion as a bundle whose meta records provenance and stored-precision error.
 * Kept out of deploy_model.ts so that what the edge bundles import does not grow checkpoint
 * readers.
 */
import { type ConvertResult, exampleInputShape, importTfjsWeights } from "./convert.ts";
import { bundleFromConversion, loadBundle } from "./deploy_model.ts";
import type { BundleDType } from "./io/bundle.ts";
import { readFileBytes, readTfjsWeightsFile } from "./io/files.ts";
import { isTfjsManifest } from "./io/tfjs.ts";
import { readSafetensors } from "./io/safetensors.ts";
import { detectFormat, readStateDict, type StateDictFormat } from "./io/statedict.ts";
import { randn } from "./random.ts";
import { forward } from "./reference.ts";
import { maxAbs, maxAbsDiff, numel, type StateDict } from "./tensor.ts";

/** A checkpoint read from a file: its tensors, format, metadata and the architecture to convert as. */
export interface Checkpoint {
  format: StateDictFormat | "tfjs";
  tensors: StateDict;
  /** safetensors metadata, or the model record + meta a tfjs import derives. */
  metadata: Record<string, string>;
  /** `arch` for convertStateDict: the caller's, or undefined where the metadata names it (tfjs). */
  arch: string | undefined;
  /** What a tfjs import recognised, for the caller to report. */
  imported?: { arch: string };
}

/** Read a checkpoint in any supported format from bytes (safetensors keep their metadata). */
export function readCheckpoint(bytes: Uint8Array, arch?: string): Checkpoint {
  const format = detectFormat(bytes);
  if (format === "safetensors") {
    const r = readSafetensors(bytes);
    return { format, tensors: r.tensors, metadata: r.metadata, arch };
  }
  return { format, tensors: readStateDict(bytes), metadata: {}, arch };
}

/**
 * Read a checkpoint file: a .pth zip, .safetensors, .npz, or a TensorFlow.js weights manifest (with
 * its .bin shards beside it), whose architecture is recognised from its weight names unless `arch`
 * forces one.
 */
export async function loadCheckpoint(
  path: string,
  arch?: string,
): Promise<Checkpoint & { bytes: number }> {
  const bytes = await readFileBytes(path);
  if (!isTfjsManifest(bytes)) return { ...readCheckpoint(bytes, arch), bytes: bytes.length };
  const imp = importTfjsWeights(await readTfjsWeightsFile(path), arch);
  return {
    format: "tfjs",
    tensors: imp.stateDict,
    metadata: imp.metadata,
    arch: undefined,
    imported: { arch: imp.desc.arch },
    bytes: bytes.length,
  };
}

/** Bytes of a state_dict held as float32 (float64/int64 at 8 bytes): its size before packing. */
export function stateDictBytes(sd: StateDict): number {
  let n = 0;
  for (const t of sd.values()) n += numel(t.shape) * (t.dtype === "int64" || t.dtype === "float64" ? 8 : 4);
  return n;
}

/** Options of {@link packConversion}. */
export interface PackOptions {
  /** Storage precision of the bundle. */
  dtype: BundleDType;
  /** Where the weights came from: file name and format (recorded in `meta.provenance`). */
  source: { name: string; format: string };
  /** safetensors metadata of the checkpoint: its `repmlp_edge_meta` (training meta) is carried over. */
  metadata?: Record<string, string>;
  /** Extra meta laid over the checkpoint's (e.g. preprocess, labels). */
  extraMeta?: Record<string, unknown>;
  /** H×W of the precision check's random input (default: the model's size). */
  inputHW?: [number, number];
}

/** A packed bundle, its meta and how far its stored precision moves the output. */
export interface PackResult {
  bytes: Uint8Array;
  meta: Record<string, unknown> & { provenance: Record<string, unknown> };
  /** fp16/int8: max |bundle − float32 deploy| on a random input, absolute and relative to max |out|. */
  precision: { maxAbsErr: number; relErr: number } | null;
  /** Size of the same bundle stored as fp32, for the size ratio. */
  fp32Bytes: number;
}

/**
 * Pack a conversion as a bundle. For fp16/int8 the bundle is decoded again and its output compared
 * with the float32 deploy model on one random input (seed 99); the errors go into the provenance.
 */
export async function packConversion(res: ConvertResult, o: PackOptions): Promise<PackResult> {
  const carried = o.metadata?.repmlp_edge_meta;
  const meta = {
    ...(carried ? JSON.parse(carried) : {}),
    ...o.extraMeta,
    provenance: {
      source: o.source.name,
      source_format: o.source.format,
      source_layout: res.mode,
      converted_by: "repmlp-edge convert",
      converted_at: new Date().toISOString(),
      fold_check_max_abs_diff: res.check?.maxAbsDiff ?? null,
    } as Record<string, unknown>,
  };
  let bytes = await bundleFromConversion(res, o.dtype, meta);
  let precision: PackResult["precision"] = null;
  if (o.dtype !== "fp32") {
    const loaded = await loadBundle(bytes);
    const x = randn(exampleInputShape(res.desc, 2, o.inputHW), 99);
    const y32 = forward(res.desc, res.deploy, x, "deploy");
    const yq = forward(res.desc, loaded.tensors, x, "deploy");
    const abs = maxAbsDiff(y32.data, yq.data);
    precision = { maxAbsErr: abs, relErr: abs / maxAbs(y32.data) };
    meta.provenance[`${o.dtype}_max_abs_err`] = precision.maxAbsErr;
    meta.provenance[`${o.dtype}_rel_err`] = precision.relErr;
    bytes = await bundleFromConversion(res, o.dtype, meta);
  }
  const fp32Bytes = o.dtype === "fp32"
    ? bytes.length
    : (await bundleFromConversion(res, "fp32", meta)).length;
  return { bytes, meta, precision, fp32Bytes };
}
