/**
 * The one image pipeline of training, eval, distillation and serving: bytes → decode at the needed
 * scale (EXIF applied) → aligned face crop (5 landmarks) or centre crop → antialiased resize → uint8
 * planar pixels → normalised float input. Training stores the uint8 pixels and normalises per batch;
 * serving normalises at once; both run exactly these functions, so a training sample and a served
 * request of the same image give the same tensor.
 */
import { alignFace, alignFootprint, type Point } from "./align.ts";
import { type ImageSource, openImage, type OpenOptions, type Scale } from "./decode.ts";
import { normalizePixels } from "./normalize.ts";
import { centerBox, type Planar, resize } from "./resample.ts";

/** What the model wants and how to crop. */
export interface CropOptions extends OpenOptions {
  /** Model input [C, H, W] (C = 1: luma, 3: RGB). */
  input: readonly [number, number, number] | readonly number[];
  /** Five landmarks (upright full-resolution pixels): aligned crop. Without them: centre crop. */
  landmarks?: readonly Point[];
  /** Where the landmarks go, as fractions of the crop (the model's bundle meta `align.template`); default ArcFace. */
  template?: readonly Point[];
}

/** Input normalisation: x = (pixel/255 − mean[c]) / std[c]. */
export interface NormalizeOptions {
  mean?: readonly number[];
  std?: readonly number[];
}

/** Decoded source resolution relative to the crop's: 2× so the resampler has real detail to filter. */
const OVERSAMPLE = 2;

const SCALES: Scale[] = [0.125, 0.25, 0.5, 1];

/** Smallest DCT scale giving at least `need` source pixels per full-resolution pixel. */
const scaleFor = (need: number): Scale => SCALES.find((s) => s >= need) ?? 1;

/**
 * Crop an opened image to the model's input as uint8 planar pixels (C·H·W, rounded). Decodes only the
 * region the crop reads, at the smallest scale that keeps ≥ 2× the crop's resolution.
 */
export async function cropPixels(src: ImageSource, opts: CropOptions): Promise<Uint8Array> {
  const [c, h, w] = opts.input;
  let planar: Planar;
  if (opts.landmarks) {
    const { box, scale } = alignFootprint(opts.landmarks, w, h, opts.template);
    const reg = await src.decodeRegion(box, { scale: scaleFor(OVERSAMPLE * scale) });
    const s = reg.scale;
    const lm = opts.landmarks.map(([x, y]) => [x * s - reg.x, y * s - reg.y] as Point);
    planar = alignFace(reg.pixels, lm, w, h, c as 1 | 3, opts.template);
  } else {
    const box = centerBox(src.width, src.height, w, h);
    const reg = await src.decodeRegion(box, { scale: scaleFor(OVERSAMPLE * Math.max(w / box.w, h / box.h)) });
    const s = reg.scale;
    const local = { x: box.x * s - reg.x, y: box.y * s - reg.y, w: box.w * s, h: box.h * s };
    planar = resize(reg.pixels, local, w, h, c as 1 | 3);
  }
  return toUint8(planar);
}

/** Round and clamp planar floats to uint8 (the dataset format). */
export function toUint8(p: Planar): Uint8Array {
  const out = new Uint8Array(p.data.length);
  for (let i = 0; i < out.length; i++) {
    const v = Math.round(p.data[i]);
    out[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  return out;
}

/** Bytes → uint8 planar model input (what training datasets store). */
export async function imageToPixels(bytes: Uint8Array, opts: CropOptions): Promise<Uint8Array> {
  return await cropPixels(await openImage(bytes, opts), opts);
}

/** Bytes → normalised float model input (what serving feeds the model): C·H·W floats. */
export async function imageToTensor(
  bytes: Uint8Array,
  opts: CropOptions & NormalizeOptions,
): Promise<Float32Array> {
  const px = await imageToPixels(bytes, opts);
  const [c, h, w] = opts.input;
  return normalizePixels(px, c, h * w, opts.mean, opts.std);
}
