/**
 * What the HTTP app needs from a model. Implementations (runtime-backed via onnxruntime-web, or the
 * pure-TS reference forward) live elsewhere and are handed to `createApp` through options, so the app
 * stays platform-neutral and never loads files itself.
 */
import { InvalidArgumentError } from "../errors.ts";

/** Per-channel normalisation applied after scaling pixels to [0, 1]: `(p/255 - mean[c]) / std[c]`. */
export interface Preprocess {
  /** Per-channel mean (length C). */
  mean: number[];
  /** Per-channel standard deviation (length C). */
  std: number[];
}

/** Fields shared by every model the app serves. */
export interface ServedModel {
  /** Unique name; clients select it with `?model=` and it is recorded on collections. */
  name: string;
  /** Weight dtype of the loaded bundle ("float32", "float16", "int8"). */
  dtype: string;
  /** Backend actually running it ("wasm", "webgpu", "reference" …). */
  backend: string;
  /** Network input [C, H, W]; C is 1 (greyscale, ITU-R 601 luma) or 3 (RGB). */
  inputSize: [number, number, number];
  /** Normalisation; default mean 0, std 1 (pixels in [0, 1]). */
  preprocess?: Preprocess;
  /**
   * Where the five alignment landmarks go in this model's crop, as fractions of its width/height
   * (from the bundle meta `align.template`); default the ArcFace template.
   */
  faceTemplate?: [number, number][];
}

/** A face-embedding model. */
export interface FaceModel extends ServedModel {
  /** Embedding length. */
  dim: number;
  /** Default cosine-similarity threshold for `match` (compare) and search filtering. */
  threshold: number;
  /**
   * Embed a batch. `batch` holds `n` preprocessed images, NCHW, `n*C*H*W` floats.
   * Resolves to `n*dim` floats, each row L2-normalised.
   */
  embed(batch: Float32Array, n: number): Promise<Float32Array>;
}

/** An image classifier (e.g. the Fashion-MNIST bundle). */
export interface ClassifierModel extends ServedModel {
  /** Class names, index = logit position. */
  labels: string[];
  /** Classify a batch (`n*C*H*W` floats, NCHW) → `n*labels.length` logits. */
  classify(batch: Float32Array, n: number): Promise<Float32Array>;
}

/** A synchronous or asynchronous NCHW forward: input `n*C*H*W` floats → `n*F` floats. */
export type ForwardFn = (
  x: Float32Array,
  shape: [number, number, number, number],
) => Float32Array | Promise<Float32Array>;

function checkInfo(info: { name: string; inputSize: [number, number, number] }): void {
  if (!info.name) throw new InvalidArgumentError("model name must not be empty");
  const [c, h, w] = info.inputSize;
  if (!(c === 1 || c === 3) || !(h > 0) || !(w > 0)) {
    throw new InvalidArgumentError(`inputSize must be [1|3, H, W], got [${info.inputSize}]`);
  }
}

/** L2-normalise each row of an `n × dim` matrix in place (zero rows stay zero). */
export function l2normalizeRows(v: Float32Array, n: number, dim: number): Float32Array {
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += v[i * dim + j] * v[i * dim + j];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < dim; j++) v[i * dim + j] *= inv;
  }
  return v;
}

/**
 * Wrap any forward function as a {@link FaceModel}. The output is checked for size and
 * L2-normalised here, so a forward without a final l2norm layer still yields unit vectors.
 */
export function faceModelFromForward(
  forward: ForwardFn,
  info: Omit<FaceModel, "embed" | "backend" | "dtype"> & { backend?: string; dtype?: string },
): FaceModel {
  checkInfo(info);
  const [c, h, w] = info.inputSize;
  return {
    ...info,
    backend: info.backend ?? "reference",
    dtype: info.dtype ?? "float32",
    async embed(batch, n) {
      if (batch.length !== n * c * h * w) {
        throw new InvalidArgumentError(
          `embed: batch has ${batch.length} floats, expected ${n}×${c}×${h}×${w}`,
        );
      }
      const out = await forward(batch, [n, c, h, w]);
      if (out.length !== n * info.dim) {
        throw new InvalidArgumentError(
          `embed: forward returned ${out.length} floats, expected ${n}×${info.dim}`,
        );
      }
      return l2normalizeRows(Float32Array.from(out), n, info.dim);
    },
  };
}

/** Wrap any forward function (returning logits) as a {@link ClassifierModel}. */
export function classifierModelFromForward(
  forward: ForwardFn,
  info: Omit<ClassifierModel, "classify" | "backend" | "dtype"> & { backend?: string; dtype?: string },
): ClassifierModel {
  checkInfo(info);
  const [c, h, w] = info.inputSize;
  const k = info.labels.length;
  return {
    ...info,
    backend: info.backend ?? "reference",
    dtype: info.dtype ?? "float32",
    async classify(batch, n) {
      if (batch.length !== n * c * h * w) {
        throw new InvalidArgumentError(
          `classify: batch has ${batch.length} floats, expected ${n}×${c}×${h}×${w}`,
        );
      }
      const out = await forward(batch, [n, c, h, w]);
      if (out.length !== n * k) {
        throw new InvalidArgumentError(`classify: forward returned ${out.length} floats, expected ${n}×${k}`);
      }
      return out;
    },
  };
}
