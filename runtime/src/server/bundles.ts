/**
 * Bundles → served models: the weights manifest format, and a {@link FaceModel} /
 * {@link ClassifierModel} built on a runtime session (onnxruntime-web WebGPU/WASM, onnxruntime-node,
 * or the reference forward). Platform-neutral: callers read the bytes.
 */
import { z } from "zod";
import "../arch/kit.ts"; // registers the kit's own architectures (RepMLPFaceNet …) that bundles may name
import { outShape } from "../arch/ir.ts";
import { InvalidArgumentError } from "../errors.ts";
import { loadBundle } from "../deploy_model.ts";
import { type Backend, createSession, type Session, type SessionOptions } from "../backends/mod.ts";
import { f32 } from "../tensor.ts";
import {
  type ClassifierModel,
  classifierModelFromForward,
  type FaceModel,
  faceModelFromForward,
  type ForwardFn,
} from "./served_model.ts";

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

const Manifest = z.object({ bundles: z.array(Entry) }).passthrough();

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

/** The default bundle of a task: the one marked `default`, else the first listed. */
export function pickDefault(m: WeightsManifest, task: "face" | "classifier"): ManifestEntry | undefined {
  const of = m.bundles.filter((b) => b.task === task);
  return of.find((b) => b.default) ?? of[0];
}

/**
 * Serialise calls to `run` and merge the requests that queue up meanwhile into one batch
 * (at most `maxBatch` images), so concurrent requests share a forward instead of waiting in line.
 */
export function batchingForward(
  run: ForwardFn,
  maxBatch = 8,
): (x: Float32Array, shape: [number, number, number, number]) => Promise<Float32Array> {
  type Job = { x: Float32Array; n: number; resolve(v: Float32Array): void; reject(e: unknown): void };
  let queue: Job[] = [];
  let busy = false;
  let chw: [number, number, number] = [0, 0, 0];
  const pump = async () => {
    if (busy || !queue.length) return;
    busy = true;
    let take = 0, n = 0;
    while (take < queue.length && (n === 0 || n + queue[take].n <= maxBatch)) n += queue[take++].n;
    const jobs = queue.slice(0, take);
    queue = queue.slice(take);
    try {
      const sz = chw[0] * chw[1] * chw[2];
      const x = new Float32Array(n * sz);
      let o = 0;
      for (const j of jobs) x.set(j.x, o), o += j.x.length;
      const y = await run(x, [n, ...chw]);
      const per = y.length / n;
      let r = 0;
      for (const j of jobs) j.resolve(y.slice(r * per, (r += j.n) * per));
    } catch (e) {
      for (const j of jobs) j.reject(e);
    } finally {
      busy = false;
      pump();
    }
  };
  return (x, shape) =>
    new Promise((resolve, reject) => {
      chw = [shape[1], shape[2], shape[3]];
      queue.push({ x, n: shape[0], resolve, reject });
      pump();
    });
}

/** The bundle's own 5-point alignment template (fractions of the crop), if it records one. */
function faceTemplate(align: unknown, name: string): [number, number][] | undefined {
  if (align === undefined) return undefined;
  const t = (align as { template?: unknown })?.template;
  const ok = Array.isArray(t) && t.length === 5 &&
    t.every((p) =>
      Array.isArray(p) && p.length === 2 && p.every((v) => typeof v === "number" && v >= 0 && v <= 1)
    );
  if (!ok) {
    throw new InvalidArgumentError(
      `bundle '${name}': meta.align.template must be 5 [x, y] points in [0, 1] (fractions of the crop)`,
    );
  }
  return t as [number, number][];
}

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
 * Load a bundle and wrap it for the app. Preprocessing (`input`, `mean`, `std`), `threshold` and
 * `labels` come from the bundle's meta unless the manifest entry overrides them.
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
  const meta = m.meta as Record<string, unknown>;
  const pre = (meta.preprocess ?? {}) as { input?: number[]; mean?: number[]; std?: number[] };
  const [c, h0, w0] = m.desc.input;
  const input = (pre.input?.length === 3 ? pre.input : [c, h0, w0]) as [number, number | null, number | null];
  if (input.some((v) => typeof v !== "number" || !(v > 0))) {
    throw new InvalidArgumentError(
      `bundle '${entry.name}' has no fixed input size`,
      'record meta.preprocess.input = [C, H, W] when converting (e.g. --meta \'{"preprocess": {"input": [3, 64, 64]}}\')',
    );
  }
  const inputSize = input as [number, number, number];
  const session = await createSession(
    { desc: m.desc, tensors: m.tensors, dtype: m.dtype, quant: opts.quant },
    {
      backend: opts.backend ?? "auto",
      inputHW: [inputSize[1], inputSize[2]],
      log: opts.log,
      ortWasm: opts.ortWasm,
    },
  );
  const forward = batchingForward(
    async (x, shape) => (await session.run(f32(shape, x))).data,
    opts.maxBatch ?? 8,
  );
  const common = {
    name: entry.name,
    inputSize,
    dtype: m.dtype,
    backend: session.backend,
    preprocess: pre.mean && pre.std ? { mean: pre.mean, std: pre.std } : undefined,
    faceTemplate: faceTemplate(meta.align, entry.name),
  };
  const outF = outShape(m.desc.root, inputSize).reduce((a, b) => a * b, 1);
  if (entry.task === "face") {
    const num = (v: unknown) => (typeof v === "number" && v >= -1 && v <= 1 ? v : undefined);
    const threshold = entry.threshold ?? num(meta.threshold) ?? num(entry.metrics?.threshold);
    if (threshold === undefined) {
      throw new InvalidArgumentError(
        `face bundle '${entry.name}' has no threshold`,
        "set threshold (or metrics.threshold) on its weights/manifest.json entry, or meta.threshold in the bundle",
      );
    }
    const model = faceModelFromForward(forward, { ...common, dim: outF, threshold });
    return { model, task: "face", session, note: session.note };
  }
  const labels = entry.labels ?? (Array.isArray(meta.labels) ? meta.labels.map(String) : undefined) ??
    Array.from({ length: outF }, (_, i) => String(i));
  if (labels.length !== outF) {
    throw new InvalidArgumentError(`classifier '${entry.name}': ${labels.length} labels for ${outF} outputs`);
  }
  const model = classifierModelFromForward(forward, { ...common, labels });
  return { model, task: "classifier", session, note: session.note };
}
