/**
 * What the app needs to know about a served model (name, input, preprocessing, output) and the
 * wrapping of any forward function into the app's FaceModel / ClassifierModel, with micro-batching.
 * No ORT, no graph building: the edge entries import this without the session machinery.
 */
import { outShape } from "../arch/ir.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { LoadedModel } from "../deploy_model.ts";
import type { ManifestEntry } from "./manifest.ts";
import {
  type ClassifierModel,
  classifierModelFromForward,
  type FaceModel,
  faceModelFromForward,
  type ForwardFn,
} from "./served_model.ts";

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

/** What the app needs to know about a model before it runs (name, input, preprocessing, output). */
export type ServedModelInfo =
  & {
    name: string;
    /** Network input [C, H, W]. */
    inputSize: [number, number, number];
    /** Storage dtype of the bundle. */
    dtype: string;
    preprocess?: { mean: number[]; std: number[] };
    /** Face models: their own 5-point alignment template (fractions of the crop), from meta `align.template`. */
    faceTemplate?: [number, number][];
  }
  & ({ task: "face"; dim: number; threshold: number } | { task: "classifier"; labels: string[] });

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

/**
 * The served-model description of a loaded bundle. Preprocessing (`input`, `mean`, `std`), `threshold`
 * and `labels` come from the bundle's meta unless the manifest entry overrides them. Pure: the edge
 * build records it at build time, `deno task serve` computes it at load; both get the same model.
 */
export function servedModelInfo(
  m: Pick<LoadedModel, "desc" | "meta" | "dtype">,
  entry: Pick<ManifestEntry, "name" | "task" | "threshold" | "labels" | "metrics">,
): ServedModelInfo {
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
  const common = {
    name: entry.name,
    inputSize,
    dtype: m.dtype,
    preprocess: pre.mean && pre.std ? { mean: pre.mean, std: pre.std } : undefined,
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
    return {
      ...common,
      task: "face",
      dim: outF,
      threshold,
      faceTemplate: faceTemplate(meta.align, entry.name),
    };
  }
  const labels = entry.labels ?? (Array.isArray(meta.labels) ? meta.labels.map(String) : undefined) ??
    Array.from({ length: outF }, (_, i) => String(i));
  if (labels.length !== outF) {
    throw new InvalidArgumentError(`classifier '${entry.name}': ${labels.length} labels for ${outF} outputs`);
  }
  return { ...common, task: "classifier", labels };
}

/** Wrap a forward (micro-batched here) as the app's FaceModel or ClassifierModel per `info.task`. */
export function servedModelFromForward(
  info: ServedModelInfo,
  run: ForwardFn,
  backend: string,
  maxBatch = 8,
): FaceModel | ClassifierModel {
  const forward = batchingForward(async (x, shape) => await run(x, shape), maxBatch);
  const { task: _task, ...rest } = info;
  return info.task === "face"
    ? faceModelFromForward(forward, { ...(rest as Omit<FaceModel, "embed">), backend })
    : classifierModelFromForward(forward, { ...(rest as Omit<ClassifierModel, "classify">), backend });
}
