/**
 * The models an edge build ships, prepared at build time: the bundle in the chosen dtype (a manifest
 * variant, else re-encoded), its served-model info, and the ONNX graph `createSession` would build
 * from it at load — built here once, so the edge runtime skips bundle decoding, dequantisation and
 * graph building on a cold start and serves numbers identical to `deno task serve`.
 */
import { type BundleDType, readBundle, SCALE_SUFFIX, writeBundle } from "../../runtime/src/io/bundle.ts";
import type { ServedModelInfo } from "../../runtime/src/server/model_info.ts";
import { graphFromBundle, type Int8Mode } from "../../runtime/adapter/graph.ts";
import { modelStem, type ResolvedModel } from "../../runtime/src/server/manifest.ts";

/** A weight bundle to ship (as the manifest reader resolves it). */
export type ModelSpec = Pick<ResolvedModel, "entry" | "path"> & Partial<Pick<ResolvedModel, "variants">>;

export type { Int8Mode };

/** A model ready to ship. */
export interface PreparedModel {
  entry: ModelSpec["entry"];
  /** Served-model info (input, preprocessing, threshold/labels …). */
  info: ServedModelInfo;
  /** Graph file name under models/. */
  file: string;
  /** The ONNX graph. */
  onnx: Uint8Array;
  /** The bundle the graph was built from (what Workers ship: the graph is built from it on first use). */
  bundle: Uint8Array;
  dtype: BundleDType;
  sha256: string;
  /** Weight bytes as float32. */
  f32Bytes: number;
}

const slug = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, "-");

/** The bundle bytes of `m` in `dtype` ("keep": as stored): a manifest variant, else re-encoded. */
async function bundleIn(m: ModelSpec, dtype: BundleDType | "keep") {
  const variant = dtype !== "keep" ? m.variants?.find((v) => v.dtype === dtype) : undefined;
  let bytes: Uint8Array = await Deno.readFile(variant?.path ?? m.path);
  const raw = await readBundle(bytes, { dequantize: false });
  if (dtype !== "keep" && raw.dtype !== dtype) {
    // Re-encode from the dequantised weights: same model record and meta, new storage dtype.
    const full = await readBundle(bytes);
    bytes = await writeBundle({ model: full.model, tensors: full.tensors, dtype, meta: full.meta });
  }
  // A manifest variant keeps its own entry (name, calibrated threshold); a re-encoding keeps the model's.
  return { bytes, entry: variant?.entry ?? m.entry };
}

/** The face detector an edge build ships: its ONNX graph as is (weights/manifest.json `detectors`). */
export interface PreparedDetector {
  /** Name in the manifest (or the file's). */
  name: string;
  /** File name under models/. */
  file: string;
  onnx: Uint8Array;
  sha256: string;
}

/** Read the detector graph at `path` (named `name`). */
export async function prepareDetector(path: string, name?: string): Promise<PreparedDetector> {
  const onnx = await Deno.readFile(path);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", onnx));
  const file = slug(path.split("/").pop()!);
  return {
    name: name ?? file.replace(/\.onnx$/, ""),
    file,
    onnx,
    sha256: [...digest].map((b) => b.toString(16).padStart(2, "0")).join(""),
  };
}

/** Prepare every model: bundle in `dtype`, info, ONNX graph (unique file names). */
export async function prepareModels(
  models: ModelSpec[],
  dtype: BundleDType | "keep",
  int8: Int8Mode = "weights",
): Promise<PreparedModel[]> {
  const out: PreparedModel[] = [];
  const used = new Set<string>();
  for (const m of models) {
    const { bytes, entry } = await bundleIn(m, dtype);
    const { info, onnx, bundle: b } = await graphFromBundle(bytes, entry, int8);
    const file0 = `${slug(modelStem(m.path))}.${b.dtype}.onnx`;
    let file = file0;
    for (let i = 2; used.has(file); i++) file = file0.replace(/\.onnx$/, `-${i}.onnx`);
    used.add(file);
    let f32Bytes = 0;
    for (const [k, t] of b.raw) {
      if (!k.endsWith(SCALE_SUFFIX) && t.dtype !== "int64") {
        f32Bytes += 4 * t.shape.reduce((p, q) => p * q, 1);
      }
    }
    out.push({
      entry,
      info,
      file,
      onnx,
      bundle: bytes,
      dtype: b.dtype,
      sha256: b.sha256,
      f32Bytes,
    });
  }
  return out;
}
