/**
 * face-api's `FaceRecognitionNet` (@vladmandic/face-api, dlib's `dlib_face_recognition_resnet_model_v1`
 * weights, public domain): a ResNet-34-style embedding net for 150×150 RGB face chips, 128-d output.
 *
 * The forward follows face-api's `FaceRecognitionNet.forwardInput` exactly:
 *   convDown(7×7, s2, valid) → maxPool(3, s2, valid) → 3× residual(32) → residualDown(64) + 3× residual(64)
 *   → residualDown(128) + 2× residual(128) → residualDown(256) + 2× residual(256) → residualDown(256)
 *   → mean over H, W → matMul(fc) (no bias, no normalisation).
 * Every conv is conv + bias then a per-channel scale layer (dlib's affine); `residualDown` runs its
 * first conv 3×3 stride 2 "valid", and its shortcut is avgPool(2, s2) with zero channels appended;
 * when the pooled map is one pixel larger, the body gets a zero row and column at the bottom/right.
 * Key names are face-api's weight names with `/` → `.` (conv `filters` → `weight`, scale
 * `weights`/`biases` → `weight`/`bias`).
 */
import { ArchMismatchError, InvalidArgumentError } from "../errors.ts";
import type { PreprocessMeta } from "../image/normalize.ts";
import type { StateDict, Tensor } from "../tensor.ts";
import type { ConvScaleLayer, Layer, ModelDesc } from "./ir.ts";
import { key, paramSpecs } from "./ir.ts";
import { int, registerArch } from "./registry.ts";

/** Architecture name of the imported recogniser (face-api's class name). */
export const FACE_API_ARCH = "FaceRecognitionNet";

/** face-api's preprocessing: RGB pixel − mean, then ÷ 255 (`normalize(x, meanRgb).div(255)`). */
export const FACE_API_MEAN_RGB = [122.782, 117.001, 104.298] as const;
/** The divisor face-api applies after the mean subtraction. */
export const FACE_API_DIVISOR = 255;

type Kw = Record<string, unknown>;

function cs(name: string, inC: number, outC: number, k: number, stride: number, pad: number, relu: boolean) {
  return {
    kind: "convscale",
    name,
    inC,
    outC,
    k,
    stride,
    pad,
    act: relu ? "relu" : "none",
  } as ConvScaleLayer;
}

/** Spatial size after a "valid" window (TF and PyTorch agree without padding). */
const valid = (H: number, k: number, s: number) => Math.floor((H - k) / s) + 1;

function residual(name: string, C: number): Layer {
  return {
    kind: "residual",
    body: {
      kind: "seq",
      layers: [cs(key(name, "conv1"), C, C, 3, 1, 1, true), cs(key(name, "conv2"), C, C, 3, 1, 1, false)],
    },
    shortcut: null,
    post: "relu",
  };
}

function residualDown(name: string, inC: number, outC: number, H: number): { layer: Layer; H: number } {
  if (outC !== inC && outC !== 2 * inC) {
    throw new InvalidArgumentError(`${name}: face-api's residualDown doubles the channels or keeps them`);
  }
  if (H < 3) {
    throw new InvalidArgumentError(`${name}: feature map ${H}×${H} is too small (image_size too small)`);
  }
  const Hb = valid(H, 3, 2), Hp = valid(H, 2, 2), d = Hp - Hb;
  if (d !== 0 && d !== 1) {
    throw new InvalidArgumentError(
      `${name}: input ${H} gives body ${Hb} vs pooled ${Hp}; face-api pads by one only`,
    );
  }
  const body: Layer[] = [
    cs(key(name, "conv1"), inC, outC, 3, 2, 0, true),
    cs(key(name, "conv2"), outC, outC, 3, 1, 1, false),
  ];
  if (d) body.push({ kind: "zeropad", c: 0, h: 1, w: 1 });
  const short: Layer[] = [{ kind: "avgpool", k: 2, stride: 2 }];
  if (outC !== inC) short.push({ kind: "zeropad", c: outC - inC, h: 0, w: 0 });
  return {
    layer: {
      kind: "residual",
      body: { kind: "seq", layers: body },
      shortcut: { kind: "seq", layers: short },
      post: "relu",
    },
    H: Hp,
  };
}

function build(kw: Kw, name: string): { root: Layer; input: ModelDesc["input"] } {
  const size = int(kw, "image_size"), emb = int(kw, "embedding_dim");
  if (size < 7) throw new InvalidArgumentError(`image_size must be ≥ 7, got ${size}`);
  const layers: Layer[] = [cs(key(name, "conv32_down"), 3, 32, 7, 2, 0, true), {
    kind: "maxpool",
    k: 3,
    stride: 2,
  }];
  let H = valid(valid(size, 7, 2), 3, 2), C = 32;
  const stages: [number, number][] = [[32, 3], [64, 3], [128, 2], [256, 2]];
  for (const [ch, n] of stages) {
    if (ch !== C) {
      const r = residualDown(key(name, `conv${ch}_down`), C, ch, H);
      layers.push(r.layer);
      H = r.H;
      C = ch;
    }
    for (let i = 1; i <= n; i++) layers.push(residual(key(name, `conv${ch}_${i}`), ch));
  }
  const last = residualDown(key(name, "conv256_down_out"), 256, 256, H);
  layers.push(last.layer, { kind: "gap" }, {
    kind: "linear",
    name: key(name, "fc"),
    inF: 256,
    outF: emb,
    bias: false,
  });
  return { root: { kind: "seq", layers }, input: [3, size, size] };
}

registerArch(FACE_API_ARCH, {
  doc: "imported: face-api FaceRecognitionNet (dlib ResNet-34-style, 150×150 RGB → 128-d, unnormalised)",
  kit: true,
  defaults: { image_size: 150, embedding_dim: 128 },
  build,
});

/** tfjs weight name and layout of a training-layout state_dict key of this architecture. */
function tfjsSource(k: string): { name: string; layout: "hwio" | "kn" | "vec" } {
  const base = (s: string) => k.slice(0, k.length - s.length).replaceAll(".", "/");
  if (k.endsWith(".conv.weight")) return { name: `${base(".weight")}/filters`, layout: "hwio" };
  if (k.endsWith(".conv.bias")) return { name: `${base(".bias")}/bias`, layout: "vec" };
  if (k.endsWith(".scale.weight")) return { name: `${base(".weight")}/weights`, layout: "vec" };
  if (k.endsWith(".scale.bias")) return { name: `${base(".bias")}/biases`, layout: "vec" };
  if (k.endsWith(".weight")) return { name: base(".weight"), layout: "kn" }; // tfjs matMul weight (in, out)
  throw new ArchMismatchError(`no tfjs source for '${k}'`);
}

/** True when a set of tfjs weight names is face-api's FaceRecognitionNet. */
export function isFaceApiRecognition(names: Iterable<string>): boolean {
  const s = new Set(names);
  return ["conv32_down/conv/filters", "conv256_down_out/conv2/scale/biases", "fc"].every((n) => s.has(n));
}

/**
 * face-api FaceRecognitionNet tfjs weights (name → tensor, tfjs layouts) → training-layout state_dict of
 * `desc` (conv filters HWIO → OIHW, fc (in, out) → (out, in)). Missing, extra or mis-shaped weights are
 * an ArchMismatchError.
 */
export function faceApiStateDict(desc: ModelDesc, weights: Map<string, Tensor>): StateDict {
  const sd: StateDict = new Map();
  const used = new Set<string>();
  for (const spec of paramSpecs(desc.root, "train")) {
    const src = tfjsSource(spec.key);
    const t = weights.get(src.name);
    if (!t || t.dtype !== "float32") {
      throw new ArchMismatchError(`tfjs weights lack float32 '${src.name}' (${spec.key})`);
    }
    used.add(src.name);
    const want = src.layout === "hwio"
      ? [spec.shape[2], spec.shape[3], spec.shape[1], spec.shape[0]]
      : src.layout === "kn"
      ? [spec.shape[1], spec.shape[0]]
      : spec.shape;
    if (t.shape.join() !== want.join()) {
      throw new ArchMismatchError(
        `tfjs weight '${src.name}' has shape [${t.shape}], ${desc.arch} needs [${want}]`,
      );
    }
    const x = t.data as Float32Array;
    let data: Float32Array;
    if (src.layout === "hwio") {
      const [O, I, kh, kw] = spec.shape;
      data = new Float32Array(x.length);
      for (let y = 0; y < kh; y++) {
        for (let xx = 0; xx < kw; xx++) {
          for (let i = 0; i < I; i++) {
            for (let o = 0; o < O; o++) {
              data[((o * I + i) * kh + y) * kw + xx] = x[((y * kw + xx) * I + i) * O + o];
            }
          }
        }
      }
    } else if (src.layout === "kn") {
      const [O, I] = spec.shape;
      data = new Float32Array(x.length);
      for (let i = 0; i < I; i++) for (let o = 0; o < O; o++) data[o * I + i] = x[i * O + o];
    } else data = Float32Array.from(x);
    sd.set(spec.key, { dtype: "float32", shape: [...spec.shape], data });
  }
  const extra = [...weights.keys()].filter((n) => !used.has(n));
  if (extra.length) {
    throw new ArchMismatchError(`tfjs weights not used by ${desc.arch}: ${extra.slice(0, 6).join(", ")}`);
  }
  return sd;
}

/**
 * The kit's five landmarks (eye centres, nose tip, mouth corners; image-left first) on dlib's mean
 * face shape (`get_face_chip_details`, 68-point case: landmarks 36–41 / 42–47 averaged, 30, 48, 54),
 * in dlib's unit face square.
 */
const DLIB_MEAN_FACE_5: readonly [number, number][] = [
  [0.2254918, 0.2159903],
  [0.7547613, 0.2159903],
  [0.490127, 0.515625],
  [0.254149, 0.780233],
  [0.726104, 0.780233],
];

/** dlib's face-chip padding for the recogniser (dlib's dnn_face_recognition example: 150 px, 0.25). */
export const DLIB_CHIP_PADDING = 0.25;

/**
 * Where those five points land in the recogniser's crop, as fractions of its side: dlib maps the unit
 * face square p to (padding + p) / (1 + 2·padding) of the chip, the geometry the weights were trained on.
 */
export function dlibChipTemplate(padding = DLIB_CHIP_PADDING): [number, number][] {
  return DLIB_MEAN_FACE_5.map((
    [x, y],
  ) => [(padding + x) / (1 + 2 * padding), (padding + y) / (1 + 2 * padding)]);
}

/**
 * Bundle preprocessing record of face-api's recogniser: (pixel − meanRgb) / 255 written as the kit's
 * (pixel/255 − mean) / std with mean = meanRgb / 255, std = 1.
 */
export function faceApiPreprocess(desc: ModelDesc): PreprocessMeta {
  const [C, H, W] = desc.input;
  return {
    layout: "NCHW",
    input: [C, H ?? 150, W ?? 150],
    mean: FACE_API_MEAN_RGB.map((m) => m / FACE_API_DIVISOR),
    std: [1, 1, 1],
  };
}
