/**
 * The one description of every model: a small tree of layers whose `name`s are the official
 * PyTorch state_dict key prefixes. Everything else is derived from it: expected keys and shapes
 * (train and deploy), the fold, the reference forward, the ONNX graph and the tfjs training graph.
 *
 * Tensors are NCHW. `name` is the key prefix without trailing dot ("" at the root).
 */

/** Plain Conv2d (official nn.Conv2d). Keys: `<name>.weight` (O, I/groups, k, k) [+ `<name>.bias` (O)]. */
export interface ConvLayer {
  /** Layer type tag. */
  kind: "conv";
  /** State_dict key prefix (no trailing dot). */
  name: string;
  /** Input channels. */
  inC: number;
  /** Output channels. */
  outC: number;
  /** Square kernel size. */
  k: number;
  /** Stride. */
  stride: number;
  /** Zero padding on each side. */
  pad: number;
  /** Channel groups. */
  groups: number;
  /** Whether `<name>.bias` exists. */
  bias: boolean;
}

/** Eval-mode BatchNorm2d. Keys: `<name>.{weight,bias,running_mean,running_var,num_batches_tracked}`. */
export interface BNLayer {
  /** Layer type tag. */
  kind: "bn";
  /** State_dict key prefix (no trailing dot). */
  name: string;
  /** Channels. */
  C: number;
  /** Variance epsilon. */
  eps: number;
}

/**
 * Conv + BN (+ optional activation). Train keys `<name>.conv.weight`, `<name>.bn.*`.
 * `fuse: true` is the 2021 `ConvBN`/`ConvBNReLU` whose deploy form is `<name>.conv.{weight,bias}`;
 * `fuse: false` is the 2022 `conv_bn` Sequential which the official deploy keeps unfused.
 */
export interface ConvBNLayer {
  /** Layer type tag. */
  kind: "convbn";
  /** State_dict key prefix (no trailing dot). */
  name: string;
  /** Input channels. */
  inC: number;
  /** Output channels. */
  outC: number;
  /** Square kernel size. */
  k: number;
  /** Stride. */
  stride: number;
  /** Zero padding on each side. */
  pad: number;
  /** Channel groups. */
  groups: number;
  /** Activation after the BN. */
  act: "none" | "relu";
  /** Whether deploy mode folds the BN into `<name>.conv` (2021) or keeps it (2022). */
  fuse: boolean;
  /** BN variance epsilon. */
  eps: number;
}

/** nn.Linear on (N, F). Keys `<name>.weight` (out, in), `<name>.bias` (out). */
export interface LinearLayer {
  /** Layer type tag. */
  kind: "linear";
  /** State_dict key prefix (no trailing dot). */
  name: string;
  /** Input features. */
  inF: number;
  /** Output features. */
  outF: number;
  /** Whether `<name>.bias` exists. */
  bias: boolean;
}

/** Pointwise activation. GELU is the exact erf form (PyTorch default). */
export interface ActLayer {
  /** Layer type tag. */
  kind: "act";
  /** Activation function. */
  fn: "relu" | "gelu" | "sigmoid";
}

/** Sequential composition. */
export interface SeqLayer {
  /** Layer type tag. */
  kind: "seq";
  /** Children, applied in order. */
  layers: Layer[];
}

/** `post(body(x) + (shortcut ? shortcut(x) : x))`. */
export interface ResidualLayer {
  /** Layer type tag. */
  kind: "residual";
  /** Main branch. */
  body: Layer;
  /** Projection on the skip path; null for identity. */
  shortcut: Layer | null;
  /** Activation applied after the sum. */
  post: "none" | "relu";
}

/** Global average pool to (N, C) (flattens). */
export interface GapLayer {
  /** Layer type tag. */
  kind: "gap";
}

/** Flatten NCHW → (N, C·H·W). */
export interface FlattenLayer {
  /** Layer type tag. */
  kind: "flatten";
}

/** Row-wise L2 normalisation of (N, F) (face embeddings). */
export interface L2NormLayer {
  /** Layer type tag. */
  kind: "l2norm";
}

/**
 * 2021 RepMLP (arXiv 2105.01883, `repmlp.py`). Input (N, inC, H, W) → (N, outC, H, W).
 * Global perceptron present iff (H, W) ≠ (h, w). `ks` = reparam_conv_k (may be empty).
 */
export interface RepMLP21Layer {
  /** Layer type tag. */
  kind: "repmlp21";
  /** State_dict key prefix (no trailing dot). */
  name: string;
  /** Input channels. */
  inC: number;
  /** Output channels. */
  outC: number;
  /** Input height. */
  H: number;
  /** Input width. */
  W: number;
  /** Partition height. */
  h: number;
  /** Partition width. */
  w: number;
  /** Local-perceptron conv kernel sizes (`reparam_conv_k`). */
  ks: number[];
  /** Global-perceptron reduction (`fc1_fc2_reduction`). */
  r: number;
  /** Groups of the partition FC (`fc3_groups`). */
  g: number;
  /** BN variance epsilon. */
  eps: number;
  /** Kit ablation only ("w/o Global Perceptron"): `false` drops the global perceptron. */
  gp?: boolean;
}

/**
 * RepMLPNet block (CVPR 2022, `repmlpnet.py` RepMLPBlock). C → C, any H, W divisible by h, w.
 * `S` = num_sharesets, `r` = globalperceptron_reduce.
 */
export interface RepMLPNetBlockLayer {
  /** Layer type tag. */
  kind: "repmlpnet_block";
  /** State_dict key prefix (no trailing dot). */
  name: string;
  /** Channels (in = out). */
  C: number;
  /** Partition height. */
  h: number;
  /** Partition width. */
  w: number;
  /** Local-perceptron conv kernel sizes. */
  ks: number[];
  /** Global-perceptron reduction (`globalperceptron_reduce`). */
  r: number;
  /** Number of weight-sharing channel sets (`num_sharesets`). */
  S: number;
  /** BN variance epsilon. */
  eps: number;
}

/**
 * Conv (with bias) then a learned per-channel scale (dlib/Caffe "affine" layer: y = x·s + b), optional
 * ReLU. Train keys `<name>.conv.{weight,bias}`, `<name>.scale.{weight,bias}`; deploy folds the scale
 * into `<name>.conv.{weight,bias}` (face-api's `convLayer`).
 */
export interface ConvScaleLayer {
  /** Layer type tag. */
  kind: "convscale";
  /** State_dict key prefix (no trailing dot). */
  name: string;
  /** Input channels. */
  inC: number;
  /** Output channels. */
  outC: number;
  /** Square kernel size. */
  k: number;
  /** Stride. */
  stride: number;
  /** Zero padding on each side. */
  pad: number;
  /** Activation after the scale. */
  act: "none" | "relu";
}

/** Max pool, square window, no padding (TF "valid"). */
export interface MaxPoolLayer {
  /** Layer type tag. */
  kind: "maxpool";
  /** Window size. */
  k: number;
  /** Stride. */
  stride: number;
}

/** Average pool, square window, no padding (TF "valid"). */
export interface AvgPoolLayer {
  /** Layer type tag. */
  kind: "avgpool";
  /** Window size. */
  k: number;
  /** Stride. */
  stride: number;
}

/** Zeros appended at the end of the channel, height and width axes (face-api's `residualDown` shapes). */
export interface ZeroPadLayer {
  /** Layer type tag. */
  kind: "zeropad";
  /** Extra zero channels after the last one. */
  c: number;
  /** Extra zero rows at the bottom. */
  h: number;
  /** Extra zero columns at the right. */
  w: number;
}

/** Any layer. */
export type Layer =
  | ConvLayer
  | BNLayer
  | ConvBNLayer
  | LinearLayer
  | ActLayer
  | SeqLayer
  | ResidualLayer
  | GapLayer
  | FlattenLayer
  | L2NormLayer
  | RepMLP21Layer
  | RepMLPNetBlockLayer
  | ConvScaleLayer
  | MaxPoolLayer
  | AvgPoolLayer
  | ZeroPadLayer;

/** A whole model: the official class name, its constructor kwargs, and the layer tree. */
export interface ModelDesc {
  /** Official class name or preset (e.g. "RepMLPBlock", "RepMLPNet"). */
  arch: string;
  /** Constructor kwargs exactly as the Python constructor takes them (normalised). */
  kwargs: Record<string, unknown>;
  /**
   * Input [C, H, W]: the only size a fixed-size model takes, or — with `anyHW` — the default size
   * (RepMLPNet: its native resolution, or the smallest larger size that fits). H/W are null when
   * there is no natural size (bare RepMLPNet blocks/units, which take any size that fits).
   */
  input: [number, number | null, number | null];
  /** Any H×W whose maps divide into every block's partitions is accepted (see arch/shapes.ts). */
  anyHW?: boolean;
  /** The layer tree (names are official state_dict key prefixes). */
  root: Layer;
}

/** Mode of a checkpoint / forward. */
export type Mode = "train" | "deploy";

/** One expected state_dict entry. */
export interface ParamSpec {
  /** Full state_dict key. */
  key: string;
  /** Expected shape. */
  shape: number[];
  /** int64 for `num_batches_tracked`, float32 otherwise. */
  dtype: "float32" | "int64";
  /** Set on BatchNorm entries (weight, bias, running_mean, running_var, num_batches_tracked). */
  bn?: true;
}

/** Join a prefix and a suffix with a dot ("" prefix → suffix). */
export function key(prefix: string, suffix: string): string {
  return prefix ? `${prefix}.${suffix}` : suffix;
}

function bnSpecs(name: string, C: number): ParamSpec[] {
  return [
    { key: key(name, "weight"), shape: [C], dtype: "float32", bn: true },
    { key: key(name, "bias"), shape: [C], dtype: "float32", bn: true },
    { key: key(name, "running_mean"), shape: [C], dtype: "float32", bn: true },
    { key: key(name, "running_var"), shape: [C], dtype: "float32", bn: true },
    { key: key(name, "num_batches_tracked"), shape: [], dtype: "int64", bn: true },
  ];
}

function convSpecs(
  name: string,
  inC: number,
  outC: number,
  k: number,
  groups: number,
  bias: boolean,
): ParamSpec[] {
  const s: ParamSpec[] = [{ key: key(name, "weight"), shape: [outC, inC / groups, k, k], dtype: "float32" }];
  if (bias) s.push({ key: key(name, "bias"), shape: [outC], dtype: "float32" });
  return s;
}

/** True when a 2021 RepMLP has its global perceptron. */
export function hasGP21(l: RepMLP21Layer): boolean {
  return l.gp !== false && (l.H !== l.h || l.W !== l.w);
}

/** Expected state_dict entries of a layer tree, in PyTorch registration order. */
export function paramSpecs(layer: Layer, mode: Mode): ParamSpec[] {
  switch (layer.kind) {
    case "conv":
      return convSpecs(layer.name, layer.inC, layer.outC, layer.k, layer.groups, layer.bias);
    case "bn":
      return bnSpecs(layer.name, layer.C);
    case "convbn": {
      const c = key(layer.name, "conv");
      if (mode === "deploy" && layer.fuse) {
        return convSpecs(c, layer.inC, layer.outC, layer.k, layer.groups, true);
      }
      return [
        ...convSpecs(c, layer.inC, layer.outC, layer.k, layer.groups, false),
        ...bnSpecs(key(layer.name, "bn"), layer.outC),
      ];
    }
    case "linear": {
      const s: ParamSpec[] = [{
        key: key(layer.name, "weight"),
        shape: [layer.outF, layer.inF],
        dtype: "float32",
      }];
      if (layer.bias) s.push({ key: key(layer.name, "bias"), shape: [layer.outF], dtype: "float32" });
      return s;
    }
    case "seq":
      return layer.layers.flatMap((l) => paramSpecs(l, mode));
    case "residual":
      return [...paramSpecs(layer.body, mode), ...(layer.shortcut ? paramSpecs(layer.shortcut, mode) : [])];
    case "repmlp21": {
      const { name, inC, outC, h, w, g } = layer;
      const hw = h * w;
      const P = inC * (layer.H / h) * (layer.W / w);
      const s: ParamSpec[] = [];
      if (hasGP21(layer)) {
        const Pr = P / layer.r;
        s.push(
          { key: key(name, "fc1_fc2.fc1.weight"), shape: [Pr, P], dtype: "float32" },
          { key: key(name, "fc1_fc2.fc1.bias"), shape: [Pr], dtype: "float32" },
          { key: key(name, "fc1_fc2.fc2.weight"), shape: [P, Pr], dtype: "float32" },
          { key: key(name, "fc1_fc2.fc2.bias"), shape: [P], dtype: "float32" },
        );
        if (mode === "train") s.push(...bnSpecs(key(name, "avg.bn"), inC));
      }
      s.push({ key: key(name, "fc3.weight"), shape: [outC * hw, (inC * hw) / g, 1, 1], dtype: "float32" });
      if (mode === "deploy") {
        s.push({ key: key(name, "fc3.bias"), shape: [outC * hw], dtype: "float32" });
      } else {
        s.push(...bnSpecs(key(name, "fc3_bn"), outC * hw));
        for (const k of layer.ks) {
          s.push(...convSpecs(key(name, `repconv${k}.conv`), inC, outC, k, g, false));
          s.push(...bnSpecs(key(name, `repconv${k}.bn`), outC));
        }
      }
      return s;
    }
    case "repmlpnet_block": {
      const { name, C, h, w, S, r } = layer;
      const hw = h * w;
      const s: ParamSpec[] = [
        ...convSpecs(key(name, "gp.fc1"), C, C / r, 1, 1, true),
        ...convSpecs(key(name, "gp.fc2"), C / r, C, 1, 1, true),
      ];
      if (mode === "deploy") {
        s.push(...convSpecs(key(name, "fc3"), S * hw, S * hw, 1, S, true));
      } else {
        s.push(...convSpecs(key(name, "fc3"), S * hw, S * hw, 1, S, false));
        s.push(...bnSpecs(key(name, "fc3_bn"), S));
        for (const k of layer.ks) {
          s.push(...convSpecs(key(name, `repconv${k}.conv`), S, S, k, S, false));
          s.push(...bnSpecs(key(name, `repconv${k}.bn`), S));
        }
      }
      return s;
    }
    case "convscale": {
      const c = key(layer.name, "conv");
      const conv = convSpecs(c, layer.inC, layer.outC, layer.k, 1, true);
      if (mode === "deploy") return conv;
      const sc = key(layer.name, "scale");
      return [
        ...conv,
        { key: key(sc, "weight"), shape: [layer.outC], dtype: "float32" },
        { key: key(sc, "bias"), shape: [layer.outC], dtype: "float32" },
      ];
    }
    case "act":
    case "gap":
    case "flatten":
    case "l2norm":
    case "maxpool":
    case "avgpool":
    case "zeropad":
      return [];
  }
}

/** Visit every layer of a tree (pre-order). */
export function walk(layer: Layer, fn: (l: Layer) => void): void {
  fn(layer);
  if (layer.kind === "seq") { for (const l of layer.layers) walk(l, fn); }
  else if (layer.kind === "residual") {
    walk(layer.body, fn);
    if (layer.shortcut) walk(layer.shortcut, fn);
  }
}

/** Shape after a layer, for input (C, H, W) (batch excluded). Flat outputs use [F] (length 1). */
export function outShape(layer: Layer, s: number[]): number[] {
  switch (layer.kind) {
    case "maxpool":
    case "avgpool": {
      const o = (x: number) => Math.floor((x - layer.k) / layer.stride) + 1;
      return [s[0], o(s[1]), o(s[2])];
    }
    case "zeropad":
      return [s[0] + layer.c, s[1] + layer.h, s[2] + layer.w];
    case "conv":
    case "convscale":
    case "convbn": {
      const [, H, W] = s;
      const o = (x: number) => Math.floor((x + 2 * layer.pad - layer.k) / layer.stride) + 1;
      return [layer.outC, o(H), o(W)];
    }
    case "bn":
    case "act":
    case "l2norm":
    case "residual":
    case "repmlpnet_block":
      return layer.kind === "residual" ? outShape(layer.body, s) : s;
    case "repmlp21":
      return [layer.outC, s[1], s[2]];
    case "linear":
      return [layer.outF];
    case "seq":
      return layer.layers.reduce((acc, l) => outShape(l, acc), s);
    case "gap":
      return [s[0]];
    case "flatten":
      return [s.reduce((a, b) => a * b, 1)];
  }
}
