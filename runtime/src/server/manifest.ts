/**
 * `weights/manifest.json`: the one reader of the weights manifest (schema, default choice, dtype
 * variants, paths), shared by `deno task serve`, the edge build and the tests. Paths are handled as
 * POSIX strings and URLs (no `node:path`), so importing this module stays platform-neutral.
 */
import { z } from "zod";
import { InvalidArgumentError } from "../errors.ts";

const Entry = z.object({
  name: z.string().min(1),
  task: z.enum(["face", "classifier"]),
  dtype: z.string(),
  /** Path relative to the manifest. */
  file: z.string().min(1),
  input_shape: z.array(z.number().int().positive()).optional(),
  /** Face bundles: cosine threshold (overrides meta.threshold). */
  threshold: z.number().min(-1).max(1).optional(),
  /** Classifier bundles: class names (overrides meta.labels). */
  labels: z.array(z.string()).optional(),
  /** Pick this bundle as the default of its task. */
  default: z.boolean().optional(),
  metrics: z.record(z.string(), z.unknown()).optional(),
}).passthrough() satisfies z.ZodType<ManifestEntry>; // the schema's output must stay a ManifestEntry

const Detector = z.object({
  name: z.string().min(1),
  task: z.literal("face-detect"),
  format: z.literal("onnx"),
  /** Path relative to the manifest. */
  file: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  default: z.boolean().optional(),
}).passthrough();

const Manifest = z.object({ bundles: z.array(Entry), detectors: z.array(Detector).optional() }).passthrough();

/** A face detector listed in `weights/manifest.json` → `detectors` (ONNX, see runtime/src/face/). */
export type DetectorEntry = z.infer<typeof Detector>;

/** One bundle listed in `weights/manifest.json`. */
export interface ManifestEntry {
  /** Unique model name (clients select it with `?model=`). */
  name: string;
  /** What the bundle serves: face embeddings or classification. */
  task: "face" | "classifier";
  /** Storage dtype of the bundle ("fp32", "fp16", "int8"). */
  dtype: string;
  /** Path relative to the manifest. */
  file: string;
  /** Network input shape, e.g. `[1, 3, 96, 96]`. */
  input_shape?: number[];
  /** Face bundles: cosine threshold (overrides meta.threshold). */
  threshold?: number;
  /** Classifier bundles: class names (overrides meta.labels). */
  labels?: string[];
  /** Pick this bundle as the default of its task. */
  default?: boolean;
  /** Evaluation results (`metrics.threshold` is a fallback face threshold). */
  metrics?: Record<string, unknown>;
  /** Other fields (description, training record …) are kept as they are. */
  [key: string]: unknown;
}

/** `weights/manifest.json`. */
export type WeightsManifest = z.infer<typeof Manifest>;

/** Validate a parsed manifest (throws InvalidArgumentError saying what is wrong). */
export function parseManifest(v: unknown, where = "manifest.json"): WeightsManifest {
  const r = Manifest.safeParse(v);
  if (!r.success) {
    throw new InvalidArgumentError(
      `${where}: ${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
      'expected { "bundles": [{ "name", "task": "face"|"classifier", "dtype", "file", … }] }',
    );
  }
  return r.data;
}

/**
 * Bundle dtype every target serves by default (`deno task serve`, dist/deno, dist/cloudflare), so a
 * photo gets the same embedding everywhere. int8: the shipped int8 face model matches fp32 (AUC 0.9944
 * vs 0.9943, weights/manifest.json) at a quarter of the size. Overridden by `DTYPE` / `--dtype`.
 */
export const DEFAULT_BUNDLE_DTYPE = "int8";

/** A bundle task (what the app serves it as). */
export type BundleTask = ManifestEntry["task"];

/** File name without directory, extension and dtype suffix: `face-x.int8.safetensors` → `face-x`. */
export function modelStem(file: string): string {
  return file.split("/").pop()!.replace(/\.safetensors$|\.bundle$/, "").replace(/[._-](fp32|fp16|int8)$/, "");
}

/** The same model stored in other dtypes: entries of the same task with the same file stem or name. */
export function variantsOf(m: WeightsManifest, e: ManifestEntry): ManifestEntry[] {
  return m.bundles.filter((b) =>
    b !== e && b.task === e.task && (b.name === e.name || modelStem(b.file) === modelStem(e.file))
  );
}

/**
 * The default bundle of a task: the one marked `default` (else the first listed), in `dtype` when the
 * manifest lists that variant of it (default {@link DEFAULT_BUNDLE_DTYPE}); `"keep"`, or no such
 * variant, gives the marked entry itself.
 */
export function pickDefault(
  m: WeightsManifest,
  task: BundleTask,
  dtype: string = DEFAULT_BUNDLE_DTYPE,
): ManifestEntry | undefined {
  const of = m.bundles.filter((b) => b.task === task);
  const d = of.find((b) => b.default) ?? of[0];
  if (!d || dtype === "keep" || d.dtype === dtype) return d;
  return variantsOf(m, d).find((v) => v.dtype === dtype) ?? d;
}

/**
 * The face detector to load: `override` (a path, or `none`), else the manifest's `detectors` entry
 * marked `default` (else the first). Absolute path and entry; null when there is none.
 */
export function chooseDetector(
  m: WeightsManifest | null,
  manifestPath: string,
  override?: string,
): { path: string; entry: DetectorEntry | null } | null {
  if (override === "none") return null;
  if (override) return { path: absPath(override), entry: null };
  const e = m?.detectors?.find((d) => d.default) ?? m?.detectors?.[0];
  if (!e) return null;
  return { path: absPath(e.file, absPath(manifestPath).replace(/[^/]*$/, "")), entry: e };
}

/** Tasks listed in the manifest, in order of first appearance. */
export function tasksOf(m: WeightsManifest): BundleTask[] {
  return [...new Set(m.bundles.map((b) => b.task))];
}

/** Absolute POSIX path of `p` (relative paths against `base`, default the working directory). */
export function absPath(p: string, base?: string): string {
  const dir = (base ?? (globalThis.Deno?.cwd() ?? "/")).replace(/\/?$/, "/");
  return decodeURIComponent(new URL(p, new URL(dir, "file:///")).pathname);
}

/** Read and validate a manifest file; null when it does not exist. */
export async function readManifest(path: string): Promise<WeightsManifest | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new InvalidArgumentError(`${path}: not JSON (${(e as Error).message})`);
  }
  return parseManifest(json, path);
}

/** The serving fields of an entry (what the app and the edge builds need). */
export type ServedEntry = Pick<ManifestEntry, "name" | "task" | "threshold" | "labels" | "metrics">;

/** A bundle to load: absolute path, its manifest entry's serving fields, and its dtype when listed. */
export interface ResolvedModel {
  /** Absolute path of the bundle. */
  path: string;
  /** Name, task and overrides (from the manifest when it lists the file, else named after the file). */
  entry: ServedEntry;
  /** Storage dtype per the manifest (undefined for a bundle the manifest does not list). */
  dtype?: string;
  /** The same model in other dtypes, from the manifest. */
  variants: { dtype: string; path: string; entry: ServedEntry }[];
}

/** The serving fields of a manifest entry. */
export function servedEntry(e: ManifestEntry): ServedEntry {
  const out: ServedEntry = { name: e.name, task: e.task };
  if (e.threshold !== undefined) out.threshold = e.threshold;
  if (e.labels !== undefined) out.labels = e.labels;
  if (e.metrics !== undefined) out.metrics = e.metrics;
  return out;
}

function resolved(m: WeightsManifest, e: ManifestEntry, manifestPath: string): ResolvedModel {
  const dir = absPath(manifestPath).replace(/[^/]*$/, "");
  return {
    path: absPath(e.file, dir),
    entry: servedEntry(e),
    dtype: e.dtype,
    variants: variantsOf(m, e).map((v) => ({
      dtype: v.dtype,
      path: absPath(v.file, dir),
      entry: servedEntry(v),
    })),
  };
}

/** The default bundle of every task the manifest lists, in `dtype` where it has that variant. */
export function defaultModels(
  m: WeightsManifest,
  manifestPath: string,
  dtype: string = DEFAULT_BUNDLE_DTYPE,
): ResolvedModel[] {
  return tasksOf(m).map((t) => resolved(m, pickDefault(m, t, dtype)!, manifestPath));
}

/** A bundle given by path: its manifest entry when the manifest lists it, else named after the file. */
export function resolveModel(
  m: WeightsManifest | null,
  manifestPath: string,
  path: string,
  task: BundleTask,
): ResolvedModel {
  const abs = absPath(path);
  const dir = absPath(manifestPath).replace(/[^/]*$/, "");
  const e = m?.bundles.find((b) => absPath(b.file, dir) === abs);
  if (m && e) return resolved(m, e, manifestPath);
  return { path: abs, entry: { name: abs.split("/").pop()!.replace(/\.[^.]+$/, ""), task }, variants: [] };
}

/** Which models to serve or ship: the manifest's defaults (every task it lists), with overrides. */
export interface ModelChoice {
  /** Manifest path (absolute or relative to the working directory). */
  manifestPath: string;
  /** Face bundles by path (replace the manifest's face default; the first is the app's default). */
  faces?: string[];
  /** Classifier bundles by path (replace the manifest's classifier default). */
  classifiers?: string[];
  /** Serve no classifier. */
  noClassifier?: boolean;
  /** dtype of the manifest defaults (default {@link DEFAULT_BUNDLE_DTYPE}). */
  dtype?: string;
}

/**
 * Resolve a {@link ModelChoice}: what `deno task serve` loads and `deno task build` ships, so both
 * serve the same bundles. No face model → InvalidArgumentError saying how to give one.
 */
export async function chooseModels(c: ModelChoice): Promise<ResolvedModel[]> {
  const manifest = await readManifest(c.manifestPath);
  const defaults = manifest ? defaultModels(manifest, c.manifestPath, c.dtype ?? DEFAULT_BUNDLE_DTYPE) : [];
  const out: ResolvedModel[] = [];
  const tasks = [...new Set<BundleTask>(["face", ...defaults.map((d) => d.entry.task)])];
  for (const task of tasks) {
    if (task === "classifier" && c.noClassifier) continue;
    const paths = task === "face" ? c.faces : task === "classifier" ? c.classifiers : undefined;
    out.push(
      ...(paths?.length
        ? paths.map((p) => resolveModel(manifest, c.manifestPath, p, task))
        : defaults.filter((d) => d.entry.task === task)),
    );
  }
  if (!out.some((m) => m.entry.task === "face")) {
    throw new InvalidArgumentError(
      manifest
        ? `${c.manifestPath} lists no face bundle`
        : `${c.manifestPath} not found: the default face model ships in weights/ (see docs/api.md)`,
      "give a face bundle: MODEL=path/to/face.bundle (deno task serve) or --face <bundle> (deno task build)",
    );
  }
  return out;
}
