/**
 * Input preprocessing recorded in checkpoints/bundles by `deno task train` (bundle meta key
 * `preprocess`) and applied to raw uint8 images by predict/eval/serving: x = (pixel/255 − mean[c]) / std[c].
 */
import { InvalidArgumentError, InvalidInputError } from "../errors.ts";
import { type F32, f32 } from "../tensor.ts";

/** How raw uint8 NCHW pixels become the model's float input. */
export interface PreprocessMeta {
  /** Always "NCHW" (uint8 raw pixels, channel-major). */
  layout: "NCHW";
  /** Expected [C, H, W] of one image. */
  input: [number, number, number];
  /** Per-channel mean of pixel/255. */
  mean: number[];
  /** Per-channel std of pixel/255. */
  std: number[];
}

/** Validate a `preprocess` record from bundle/checkpoint meta. */
export function parsePreprocess(v: unknown): PreprocessMeta {
  const p = v as PreprocessMeta;
  const ok = p && typeof p === "object" && p.layout === "NCHW" && Array.isArray(p.input) &&
    p.input.length === 3 &&
    Array.isArray(p.mean) && Array.isArray(p.std) && p.mean.length === p.input[0] &&
    p.std.length === p.input[0] &&
    p.std.every((s) => typeof s === "number" && s > 0);
  if (!ok) {
    throw new InvalidArgumentError(
      "bundle meta has no valid 'preprocess' record",
      "uint8 input needs a bundle made from a `deno task train` checkpoint; otherwise pass preprocessed float32 input",
    );
  }
  return p;
}

/**
 * uint8 (N, C, H, W) raw pixels → float32 model input, using the bundle's own normalisation.
 * `shape` must match `meta.input` (batch first); with `anyHW` (models that take several sizes,
 * e.g. RepMLPNet) only the channels must, and the model checks H×W.
 */
export function preprocess(
  meta: PreprocessMeta | unknown,
  pixels: Uint8Array,
  shape: readonly number[],
  opts: { anyHW?: boolean } = {},
): F32 {
  const p = parsePreprocess(meta);
  const C = p.input[0];
  const [H, W] = opts.anyHW ? [shape[2], shape[3]] : [p.input[1], p.input[2]];
  if (shape.length !== 4 || shape[1] !== C || shape[2] !== H || shape[3] !== W) {
    const hw = opts.anyHW ? "H, W" : `${H}, ${W}`;
    throw new InvalidInputError(`expected uint8 images (N, ${C}, ${hw}), got (${shape.join(", ")})`);
  }
  const N = shape[0], plane = H * W;
  if (pixels.length !== N * C * plane) {
    throw new InvalidInputError(`uint8 data has ${pixels.length} values, shape needs ${N * C * plane}`);
  }
  const out = f32([N, C, H, W]);
  normalizePixels(pixels, C, plane, p.mean, p.std, out.data);
  return out;
}

/**
 * uint8 planar pixels (any number of C·H·W images, `plane` = H·W) → (pixel/255 − mean[c]) / std[c]:
 * the one normalisation of training, eval and serving. A missing mean/std is 0/1; a 1-element one
 * applies to every channel.
 */
export function normalizePixels(
  pixels: Uint8Array,
  channels: number,
  plane: number,
  mean?: readonly number[],
  std?: readonly number[],
  out: Float32Array = new Float32Array(pixels.length),
): Float32Array {
  for (let o = 0, c = 0; o < pixels.length; o += plane, c++) {
    const ch = c % channels;
    const m = mean?.[ch] ?? mean?.[0] ?? 0, sd = std?.[ch] ?? std?.[0] ?? 1;
    const s = 1 / (255 * sd), b = -m / sd;
    for (let i = 0; i < plane; i++) out[o + i] = pixels[o + i] * s + b;
  }
  return out;
}
