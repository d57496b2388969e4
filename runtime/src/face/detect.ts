/**
 * Face detection on an upright RGB image with MediaPipe BlazeFace (back, 256×256) on the kit's ORT
 * backends. One square model input sees the whole image; for small faces the image is also cut into
 * overlapping windows (a pyramid: each level halves the window), so that the smallest face asked for
 * still spans enough model pixels. Detections of every window are merged with weighted NMS.
 */
import { createGraphSession } from "../backends/mod.ts";
import type { Backend } from "../backends/mod.ts";
import type { EngineOptions } from "../backends/engine.ts";
import { InvalidArgumentError } from "../errors.ts";
import {
  BLAZEFACE_BACK,
  type BlazeFaceConfig,
  decodeDetections,
  type RawDetection,
  ssdAnchors,
  weightedNms,
} from "./blazeface.ts";
import { fiveLandmarks, type Point } from "./landmarks.ts";
import { resize } from "../image/resample.ts";

/** 8-bit RGB, interleaved, upright (what the image decoder returns). */
export interface RgbLike {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** R, G, B per pixel, row by row. */
  data: Uint8Array;
}

/** A face found in the image, in upright-image pixels. */
export interface Face {
  /** Square face box (BlazeFace's: brows to chin, ear to ear). */
  box: { x: number; y: number; width: number; height: number };
  /** Alignment points: eye (image left), eye (image right), nose tip, mouth corner left, right. */
  landmarks: Point[];
  /** The detector's six keypoints (right eye, left eye, nose tip, mouth centre, right ear, left ear). */
  keypoints: Point[];
  /** Detector confidence (sigmoid of the classifier logit). */
  score: number;
}

/** Options of {@link FaceDetector.detect}. */
export interface DetectOptions {
  /** Smallest face side (pixels of the image given) the pyramid must reach. Default 40. */
  minFace?: number;
  /** Upper bound on model runs per image (the pyramid stops early, raising the smallest face). Default 40. */
  maxWindows?: number;
  /** Score threshold. Default 0.5 (MediaPipe's). */
  minScore?: number;
  /**
   * Score threshold for the pyramid's tiles (level ≥ 1), where zoomed-in texture sometimes looks
   * face-like. Default 0.6 (docs/api.md: the false positives measured there scored 0.51–0.61).
   */
  minTileScore?: number;
  /** At most this many faces, largest first. Default 100. */
  maxFaces?: number;
  /**
   * Deepest pyramid level (0: only the whole-image windows, enough for faces ≥ 6 % of the long
   * side). Default: as deep as `minFace` needs.
   */
  maxLevel?: number;
}

/** What {@link FaceDetector.detect} returns. */
export interface DetectResult {
  /** Faces, largest box first. */
  faces: Face[];
  /** Model runs made. */
  windows: number;
  /** The smallest face side (px) the windows used can find; above `minFace` when `maxWindows` capped it. */
  minFace: number;
}

/** A square model window over the image, in image pixels (may extend past the border: padded black). */
export interface Window {
  /** Left edge (image px). */
  x: number;
  /** Top edge (image px). */
  y: number;
  /** Side (image px). */
  size: number;
  /** Pyramid level (0 = whole image). */
  level: number;
}

/**
 * Smallest face, as a fraction of the window side, the model finds reliably. Measured on the
 * face-api demo photos shrunk step by step (docs/api.md, "Face detection"): all faces of 14 model
 * pixels (of 256) and more were found, 10 of 11 at 12 px, 5 of 7 at 10 px.
 */
export const MIN_FACE_FRACTION = 0.06;
/**
 * A face filling the frame is missed at level 0 (16 of 22 found when its box is 90 % of the image
 * side; all at 70 %), so one more window shows the whole image shrunk into the middle of the input.
 */
export const ZOOM_OUT = 1.6;
const OVERLAP = 0.25;
const NMS_IOU = 0.3;

/**
 * The windows for an image: level 0 is one square over the whole image, level -1 the image shrunk
 * to the middle of the input (for frame-filling faces); each next level halves the
 * side and tiles the image with `OVERLAP` so a face smaller than the overlap lies wholly inside one
 * window. Levels are added until `MIN_FACE_FRACTION · side ≤ minFace` or the next level would pass
 * `maxWindows`.
 */
export function planWindows(width: number, height: number, minFace = 40, maxWindows = 40): Window[] {
  const long = Math.max(width, height);
  const z = long * ZOOM_OUT;
  const out: Window[] = [
    { x: (width - long) / 2, y: (height - long) / 2, size: long, level: 0 },
    { x: (width - z) / 2, y: (height - z) / 2, size: z, level: -1 },
  ];
  for (let level = 1, side = long / 2; MIN_FACE_FRACTION * side * 2 > minFace; level++, side /= 2) {
    const step = side * (1 - OVERLAP);
    const nx = Math.max(1, Math.ceil((width - side) / step) + 1),
      ny = Math.max(1, Math.ceil((height - side) / step) + 1);
    if (out.length + nx * ny > maxWindows) break;
    // Spread the windows evenly so the last one ends at the border.
    const sx = nx > 1 ? (width - side) / (nx - 1) : 0, sy = ny > 1 ? (height - side) / (ny - 1) : 0;
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        out.push({
          x: nx > 1 ? i * sx : (width - side) / 2,
          y: ny > 1 ? j * sy : (height - side) / 2,
          size: side,
          level,
        });
      }
    }
  }
  return out;
}

/**
 * Resample the window of an upright RGB image into the model input: `n × n` NHWC float32 in [-1, 1]
 * (the image pipeline's antialiased resize; outside the image is black, -1, as MediaPipe's letterbox).
 * Only the window's pixels are read.
 */
export function windowInput(
  img: RgbLike,
  win: Window,
  n: number,
  out: Float32Array = new Float32Array(n * n * 3),
): Float32Array {
  const p = resize(img, { x: win.x, y: win.y, w: win.size, h: win.size }, n, n, 3).data;
  const nn = n * n, k = 1 / 127.5;
  for (let i = 0; i < nn; i++) {
    out[3 * i] = p[i] * k - 1;
    out[3 * i + 1] = p[nn + i] * k - 1;
    out[3 * i + 2] = p[2 * nn + i] * k - 1;
  }
  return out;
}

/**
 * Tiles (level ≥ 1) keep only faces of the size they are there for: a larger one is seen whole by
 * the coarser level, and here is either cut by the tile edge or a texture the zoom made face-like.
 */
const TILE_MAX_FACE = 4 * MIN_FACE_FRACTION;

/** True when a tile's detection is cut by an edge inside the image or too large for its level. */
function rejectInTile(d: RawDetection, win: Window, W: number, H: number): boolean {
  if (win.level <= 0) return false;
  const m = 0.01;
  return d.w > TILE_MAX_FACE || d.h > TILE_MAX_FACE || (d.cx - d.w / 2 < m && win.x > 0.5) ||
    (d.cy - d.h / 2 < m && win.y > 0.5) ||
    (d.cx + d.w / 2 > 1 - m && win.x + win.size < W - 0.5) ||
    (d.cy + d.h / 2 > 1 - m && win.y + win.size < H - 0.5);
}

function toImage(d: RawDetection, win: Window): RawDetection {
  const s = win.size;
  return {
    cx: win.x + d.cx * s,
    cy: win.y + d.cy * s,
    w: d.w * s,
    h: d.h * s,
    kp: d.kp.map((v, i) => (i % 2 ? win.y : win.x) + v * s),
    score: d.score,
  };
}

function toFace(d: RawDetection): Face {
  const keypoints: Point[] = [];
  for (let k = 0; k < d.kp.length; k += 2) keypoints.push([d.kp[k], d.kp[k + 1]]);
  return {
    box: { x: d.cx - d.w / 2, y: d.cy - d.h / 2, width: d.w, height: d.h },
    landmarks: fiveLandmarks(keypoints),
    keypoints,
    score: d.score,
  };
}

/** Window side / face side of the refinement pass (the face ≈ 85 of 256 model px). */
const REFINE_CONTEXT = 3;

/** The part of an ORT session the detector uses (a backends `GraphSession` or an engine's session). */
export interface DetectorSession {
  /** Backend name, for logs and /healthz. */
  readonly backend?: string;
  /** Run on an NHWC float32 input; every output in graph order. */
  runAll(data: Float32Array, dims: number[]): Promise<{ data: Float32Array; dims: number[] }[]>;
  /** Free the session. */
  release(): Promise<void>;
}

/** Options of {@link FaceDetector.create}. */
export interface DetectorOptions extends EngineOptions {
  /** Backend for the detector graph (`auto`/`reference` → wasm). */
  backend?: Backend;
  /** Anchor/decoder configuration matching the ONNX bytes. Default {@link BLAZEFACE_BACK}. */
  config?: BlazeFaceConfig;
}

/** A loaded BlazeFace detector. */
export class FaceDetector {
  /** Anchor/decoder configuration. */
  readonly config: BlazeFaceConfig;
  /** Backend the graph runs on. */
  readonly backend: string;
  #session: DetectorSession;
  #anchors: Float32Array;

  private constructor(session: DetectorSession, config: BlazeFaceConfig) {
    this.#session = session;
    this.config = config;
    this.backend = session.backend ?? "wasm";
    this.#anchors = ssdAnchors(config);
  }

  /** Load the ONNX bytes of a BlazeFace model (NHWC input in [-1, 1]; heads: logits ×2, regressors ×2). */
  static async create(onnx: Uint8Array, opts: DetectorOptions = {}): Promise<FaceDetector> {
    const session = await createGraphSession(onnx, opts);
    return new FaceDetector(session, opts.config ?? BLAZEFACE_BACK);
  }

  /**
   * Wrap a session an adapter already made (e.g. the edge entry points' shared ORT engine:
   * `engine.create(onnxBytes)`), so the detector runs where the face models run.
   */
  static fromSession(session: DetectorSession, config: BlazeFaceConfig = BLAZEFACE_BACK): FaceDetector {
    return new FaceDetector(session, config);
  }

  /** Raw detections of one window (normalised to the window), before the image-level NMS. */
  async runWindow(img: RgbLike, win: Window, minScore: number, buf?: Float32Array): Promise<RawDetection[]> {
    const n = this.config.inputSize;
    const x = windowInput(img, win, n, buf);
    const outs = await this.#session.runAll(x, [1, n, n, 3]);
    // Heads come as [logits 16×16 map, logits 8×8 map, regressors 16×16, regressors 8×8]: the anchor order.
    const [l0, l1, r0, r1] = outs;
    const logits = new Float32Array(l0.data.length + l1.data.length);
    logits.set(l0.data), logits.set(l1.data, l0.data.length);
    const regress = new Float32Array(r0.data.length + r1.data.length);
    regress.set(r0.data), regress.set(r1.data, r0.data.length);
    return decodeDetections(this.config, this.#anchors, logits, regress, minScore);
  }

  /**
   * Re-detect one face in a window centred on it, the face a third of the window: its landmarks no
   * longer depend on where the face fell among the pyramid's windows and anchors (one model run).
   * Returns the face unchanged when the re-run does not find it.
   */
  async refine(img: RgbLike, face: Face, minScore = 0.5): Promise<Face> {
    const cx = face.box.x + face.box.width / 2, cy = face.box.y + face.box.height / 2;
    const size = REFINE_CONTEXT * Math.max(face.box.width, face.box.height);
    const win: Window = { x: cx - size / 2, y: cy - size / 2, size, level: 0 };
    const dets = (await this.runWindow(img, win, minScore)).map((d) => toImage(d, win));
    const best = weightedNms(dets, NMS_IOU).find((d) => Math.hypot(d.cx - cx, d.cy - cy) < 0.25 * d.w);
    return best ? toFace(best) : face;
  }

  /** Find the faces in an upright RGB image. */
  async detect(img: RgbLike, opts: DetectOptions = {}): Promise<DetectResult> {
    const minFace = opts.minFace ?? 40, maxWindows = opts.maxWindows ?? 40;
    const minScore = opts.minScore ?? 0.5, maxFaces = opts.maxFaces ?? 100;
    if (!(minFace > 0) || !(maxWindows >= 1) || !(minScore > 0 && minScore < 1) || !(maxFaces >= 1)) {
      throw new InvalidArgumentError(
        "detect options: minFace > 0, maxWindows ≥ 1, 0 < minScore < 1, maxFaces ≥ 1",
      );
    }
    const { width: W, height: H } = img;
    const wins = planWindows(W, H, minFace, maxWindows).filter((w) => w.level <= (opts.maxLevel ?? Infinity));
    const n = this.config.inputSize, buf = new Float32Array(n * n * 3);
    const all: RawDetection[] = [];
    const tileScore = Math.max(minScore, opts.minTileScore ?? 0.6);
    for (const win of wins) {
      for (const d of await this.runWindow(img, win, win.level > 0 ? tileScore : minScore, buf)) {
        if (!rejectInTile(d, win, W, H)) all.push(toImage(d, win));
      }
    }
    const merged = weightedNms(all, NMS_IOU, maxFaces);
    const faces = merged.map(toFace).sort((a, b) => b.box.width * b.box.height - a.box.width * a.box.height);
    const smallest = Math.min(...wins.map((w) => w.size));
    return { faces, windows: wins.length, minFace: Math.max(minFace, MIN_FACE_FRACTION * smallest) };
  }

  /** Free the ORT session. */
  async dispose(): Promise<void> {
    await this.#session.release();
  }
}

/** What detection needs from an opened image (runtime/src/image's `ImageSource` fits). */
export interface ScaledSource {
  /** Upright full-resolution width. */
  width: number;
  /** Upright full-resolution height. */
  height: number;
  /** The whole image decoded at a DCT scale (1, 1/2, 1/4, 1/8). */
  decode(opts: { scale: 1 | 0.5 | 0.25 | 0.125 }): Promise<{ scale: number; pixels: RgbLike }>;
}

/** Options of {@link findFaces}. */
export interface FindOptions extends Omit<DetectOptions, "maxLevel"> {
  /** All faces down to `minFace` (detect, enrol of a group). Default false: the largest face only matters. */
  all?: boolean;
}

const SCALES = [0.125, 0.25, 0.5, 1] as const;
/** The whole-image windows see 256 px: decoding much more than 2× that only costs time. */
const WHOLE_IMAGE_PX = 512;
/** A face of `minFace` px must keep this many decoded px (≥ the model's 15 px at 1:1 in the finest windows). */
const MIN_FACE_DECODED_PX = 16;

const pickScale = (need: (s: number) => boolean) => SCALES.find(need) ?? 1;

/**
 * Detect on the smallest DCT-scaled decode that still resolves the faces asked for, and return them
 * in full-resolution pixels. Without `all`, the whole-image windows run first on a ~512 px decode and
 * answer when they find a face (a selfie or a portrait costs two model runs); otherwise, or when they
 * find none, the pyramid runs down to `minFace` on a decode where such a face keeps ≥ 16 px.
 */
export async function findFaces(
  det: FaceDetector,
  src: ScaledSource,
  opts: FindOptions = {},
): Promise<DetectResult> {
  const long = Math.max(src.width, src.height), minFace = opts.minFace ?? 40;
  const run = async (scale: number, o: DetectOptions): Promise<DetectResult> => {
    const d = await src.decode({ scale: scale as 1 | 0.5 | 0.25 | 0.125 });
    const k = 1 / d.scale;
    const r = await det.detect(d.pixels, { ...opts, ...o, minFace: o.minFace! * d.scale });
    return {
      windows: r.windows,
      minFace: r.minFace * k,
      faces: r.faces.map((f) => ({
        ...f,
        box: { x: f.box.x * k, y: f.box.y * k, width: f.box.width * k, height: f.box.height * k },
        landmarks: f.landmarks.map(([x, y]) => [x * k, y * k] as Point),
        keypoints: f.keypoints.map(([x, y]) => [x * k, y * k] as Point),
      })),
    };
  };
  let spent = 0;
  if (!opts.all) {
    const quick = await run(pickScale((s) => long * s >= WHOLE_IMAGE_PX), { minFace, maxLevel: 0 });
    if (quick.faces.length) return quick;
    spent = quick.windows;
  }
  const s = pickScale((s) => minFace * s >= MIN_FACE_DECODED_PX && long * s >= WHOLE_IMAGE_PX);
  const full = await run(s, { minFace });
  return { ...full, windows: full.windows + spent };
}
