/**
 * MediaPipe BlazeFace post-processing, written from the model's published graph configuration
 * (MediaPipe `face_detection_*` graphs: SsdAnchorsCalculator + TensorsToDetectionsCalculator +
 * NonMaxSuppressionCalculator with the WEIGHTED algorithm). Pure functions, no ORT: the runner
 * (detect.ts) feeds them the raw head outputs.
 */

/** Anchor and decoder configuration of one BlazeFace variant. */
export interface BlazeFaceConfig {
  /** Square input side in pixels. */
  inputSize: number;
  /** SSD layer strides; consecutive equal strides share one feature map. */
  strides: readonly number[];
  /** Anchors per cell per layer (aspect ratio 1.0 + the interpolated scale: 2). */
  anchorsPerLayer: number;
  /** Box/keypoint offsets are in input pixels: divide by this scale. */
  coordScale: number;
  /** Sigmoid input clipping (score_clipping_thresh). */
  scoreClip: number;
  /** Keypoints per detection. */
  keypoints: number;
}

/** `face_detection_back` (256×256, for faces farther from the camera): strides 16, 32, 32, 32. */
export const BLAZEFACE_BACK: BlazeFaceConfig = {
  inputSize: 256,
  strides: [16, 32, 32, 32],
  anchorsPerLayer: 2,
  coordScale: 256,
  scoreClip: 100,
  keypoints: 6,
};

/** `face_detection_front` (128×128, selfie range): strides 8, 16, 16, 16. */
export const BLAZEFACE_FRONT: BlazeFaceConfig = {
  inputSize: 128,
  strides: [8, 16, 16, 16],
  anchorsPerLayer: 2,
  coordScale: 128,
  scoreClip: 100,
  keypoints: 6,
};

/**
 * SSD anchor centres (x, y pairs in 0..1), in the order the model's heads emit them: per feature map
 * (layers of equal stride merged), row-major cells, then the anchors of that cell. The graphs use
 * `fixed_anchor_size: true`, so every anchor is 1×1 and only centres matter.
 */
export function ssdAnchors(cfg: BlazeFaceConfig): Float32Array {
  const out: number[] = [];
  let i = 0;
  while (i < cfg.strides.length) {
    let j = i;
    while (j < cfg.strides.length && cfg.strides[j] === cfg.strides[i]) j++;
    const perCell = (j - i) * cfg.anchorsPerLayer;
    const fm = Math.ceil(cfg.inputSize / cfg.strides[i]);
    for (let y = 0; y < fm; y++) {
      for (let x = 0; x < fm; x++) {
        for (let a = 0; a < perCell; a++) out.push((x + 0.5) / fm, (y + 0.5) / fm);
      }
    }
    i = j;
  }
  return new Float32Array(out);
}

/** One decoded detection in normalised input coordinates (0..1 over the model input). */
export interface RawDetection {
  /** Box centre x. */
  cx: number;
  /** Box centre y. */
  cy: number;
  /** Box width. */
  w: number;
  /** Box height. */
  h: number;
  /** Keypoints as x, y pairs (BlazeFace: right eye, left eye, nose tip, mouth, right ear, left ear). */
  kp: number[];
  /** Sigmoid score. */
  score: number;
}

/**
 * Decode the regressor (`[n, 4 + 2·keypoints]`, x/y/w/h first) and classifier logits (`[n]`) over
 * `anchors`, keeping detections whose sigmoid score is at least `minScore`.
 */
export function decodeDetections(
  cfg: BlazeFaceConfig,
  anchors: Float32Array,
  logits: Float32Array,
  regress: Float32Array,
  minScore: number,
): RawDetection[] {
  const n = anchors.length / 2, stride = 4 + 2 * cfg.keypoints, s = cfg.coordScale;
  if (logits.length !== n || regress.length !== n * stride) {
    throw new RangeError(`detector heads have ${logits.length}/${regress.length} values for ${n} anchors`);
  }
  const minLogit = Math.log(minScore / (1 - minScore));
  const out: RawDetection[] = [];
  for (let i = 0; i < n; i++) {
    const logit = Math.max(-cfg.scoreClip, Math.min(cfg.scoreClip, logits[i]));
    if (!(logit >= minLogit)) continue;
    const ax = anchors[2 * i], ay = anchors[2 * i + 1], o = i * stride;
    const kp: number[] = [];
    for (let k = 0; k < cfg.keypoints; k++) {
      kp.push(ax + regress[o + 4 + 2 * k] / s, ay + regress[o + 5 + 2 * k] / s);
    }
    out.push({
      cx: ax + regress[o] / s,
      cy: ay + regress[o + 1] / s,
      w: regress[o + 2] / s,
      h: regress[o + 3] / s,
      kp,
      score: 1 / (1 + Math.exp(-logit)),
    });
  }
  return out;
}

/** Intersection over union of two centre-size boxes. */
export function iou(a: RawDetection, b: RawDetection): number {
  const ix = Math.min(a.cx + a.w / 2, b.cx + b.w / 2) - Math.max(a.cx - a.w / 2, b.cx - b.w / 2);
  const iy = Math.min(a.cy + a.h / 2, b.cy + b.h / 2) - Math.max(a.cy - a.h / 2, b.cy - b.h / 2);
  if (ix <= 0 || iy <= 0) return 0;
  const inter = ix * iy;
  return inter / (a.w * a.h + b.w * b.h - inter);
}

/**
 * MediaPipe's weighted non-maximum suppression: take the best remaining detection, merge every
 * remaining one that overlaps it by more than `iouThreshold` into a score-weighted mean of boxes and
 * keypoints (the best score is kept), repeat. At most `maxOut` results, best first.
 */
export function weightedNms(
  dets: readonly RawDetection[],
  iouThreshold: number,
  maxOut = Infinity,
): RawDetection[] {
  const rest = [...dets].sort((a, b) => b.score - a.score);
  const out: RawDetection[] = [];
  while (rest.length && out.length < maxOut) {
    const top = rest[0];
    const group: RawDetection[] = [], keep: RawDetection[] = [];
    for (const d of rest) (iou(top, d) > iouThreshold || d === top ? group : keep).push(d);
    let sw = 0;
    const acc = { cx: 0, cy: 0, w: 0, h: 0, kp: top.kp.map(() => 0) };
    for (const d of group) {
      sw += d.score;
      acc.cx += d.cx * d.score, acc.cy += d.cy * d.score, acc.w += d.w * d.score, acc.h += d.h * d.score;
      for (let k = 0; k < d.kp.length; k++) acc.kp[k] += d.kp[k] * d.score;
    }
    out.push({
      cx: acc.cx / sw,
      cy: acc.cy / sw,
      w: acc.w / sw,
      h: acc.h / sw,
      kp: acc.kp.map((v) => v / sw),
      score: top.score,
    });
    rest.length = 0;
    rest.push(...keep);
  }
  return out;
}
