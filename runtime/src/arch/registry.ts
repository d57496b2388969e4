/**
 * Official RepMLP classes and presets → layer trees. Constructor names and kwargs are the
 * Python ones (`repmlp.py`, `repmlp_blocks.py` of 2021; `repmlpnet.py` of 2022), so a user can pass
 * the same kwargs they gave PyTorch.
 */
import { InvalidArgumentError } from "../errors.ts";
import type { ConvBNLayer, Layer, ModelDesc, RepMLP21Layer, RepMLPNetBlockLayer } from "./ir.ts";
import { key } from "./ir.ts";
import { nearestValid } from "./shapes.ts";

const EPS = 1e-5;

/** Python-style constructor kwargs. */
export type Kw = Record<string, unknown>;

/** What an architecture's builder returns (see {@link ModelDesc}). */
export type Built = Pick<ModelDesc, "root" | "input" | "anyHW">;

/** One architecture: its kwargs (with defaults; `undefined` = required) and its builder. */
export interface ArchDef {
  /** One-line description (shown by {@link archDoc}). */
  doc: string;
  /** Set on the kit's own (non-official) architectures. */
  kit?: true;
  /** Every accepted kwarg with its default; `undefined` marks a required one. */
  defaults: Kw;
  /** Build the layer tree (key prefix `name`) and its input shape from complete kwargs. */
  build(kw: Kw, name: string): Built;
}

export function int(kw: Kw, k: string): number {
  const v = kw[k];
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    throw new InvalidArgumentError(`kwarg '${k}' must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

export function ints(kw: Kw, k: string, allowEmpty = false): number[] {
  let v = kw[k];
  if (v === null || v === undefined) v = [];
  if (typeof v === "number") v = [v];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "number" || !Number.isInteger(x) || x <= 0)) {
    throw new InvalidArgumentError(
      `kwarg '${k}' must be a list of positive integers, got ${JSON.stringify(v)}`,
    );
  }
  if (!allowEmpty && v.length === 0) throw new InvalidArgumentError(`kwarg '${k}' must not be empty`);
  return v as number[];
}

/** A kernel size that may be given as int or (k, k) pair; non-square is not supported. */
function square(kw: Kw, k: string): number {
  const v = kw[k];
  if (Array.isArray(v)) {
    if (v.length !== 2 || v[0] !== v[1]) {
      throw new InvalidArgumentError(`kwarg '${k}' must be square, got ${JSON.stringify(v)}`);
    }
    return int({ [k]: v[0] }, k);
  }
  return int(kw, k);
}

export function divides(a: number, b: number, what: string) {
  if (b % a !== 0) throw new InvalidArgumentError(`${what}: ${b} is not divisible by ${a}`);
}

export function convbn(
  name: string,
  inC: number,
  outC: number,
  k: number,
  o: { stride?: number; pad?: number; groups?: number; act?: "none" | "relu"; fuse: boolean },
): ConvBNLayer {
  return {
    kind: "convbn",
    name,
    inC,
    outC,
    k,
    stride: o.stride ?? 1,
    pad: o.pad ?? 0,
    groups: o.groups ?? 1,
    act: o.act ?? "none",
    fuse: o.fuse,
    eps: EPS,
  };
}

function checkKs(ks: number[]) {
  for (const k of ks) {
    if (k % 2 !== 1) throw new InvalidArgumentError(`reparam_conv_k must be odd, got ${k}`);
  }
}

export function repmlp21(kw: Kw, name: string): RepMLP21Layer {
  const inC = int(kw, "in_channels"), outC = int(kw, "out_channels");
  const H = int(kw, "H"), W = int(kw, "W"), h = int(kw, "h"), w = int(kw, "w");
  const ks = ints(kw, "reparam_conv_k", true);
  const r = int(kw, "fc1_fc2_reduction"), g = int(kw, "fc3_groups");
  checkKs(ks);
  divides(h, H, "H must be a multiple of h");
  divides(w, W, "W must be a multiple of w");
  divides(g, inC, "in_channels must be a multiple of fc3_groups");
  divides(g, outC, "out_channels must be a multiple of fc3_groups");
  if (H !== h || W !== w) {
    divides(r, inC * (H / h) * (W / w), "C·(H/h)·(W/w) must be a multiple of fc1_fc2_reduction");
  }
  return { kind: "repmlp21", name, inC, outC, H, W, h, w, ks, r, g, eps: EPS };
}

export function repmlpnetBlock(kw: Kw, name: string): RepMLPNetBlockLayer {
  const C = int(kw, "in_channels"), O = int(kw, "out_channels");
  if (C !== O) {
    throw new InvalidArgumentError("RepMLPBlock requires in_channels == out_channels (as the official code)");
  }
  const h = int(kw, "h"), w = int(kw, "w");
  const ks = ints(kw, "reparam_conv_k", true);
  checkKs(ks);
  const r = int(kw, "globalperceptron_reduce"), S = int(kw, "num_sharesets");
  divides(S, C, "in_channels must be a multiple of num_sharesets");
  divides(r, C, "in_channels must be a multiple of globalperceptron_reduce");
  return { kind: "repmlpnet_block", name, C, h, w, ks, r, S, eps: EPS };
}

export function repmlpnetUnit(kw: Kw, name: string): Layer {
  const C = int(kw, "channels");
  const expand = int(kw, "ffn_expand");
  const block = repmlpnetBlock({
    in_channels: C,
    out_channels: C,
    h: kw.h,
    w: kw.w,
    reparam_conv_k: kw.reparam_conv_k,
    globalperceptron_reduce: kw.globalperceptron_reduce,
    num_sharesets: kw.num_sharesets,
  }, key(name, "repmlp_block"));
  return {
    kind: "seq",
    layers: [
      {
        kind: "residual",
        body: { kind: "seq", layers: [{ kind: "bn", name: key(name, "prebn1"), C, eps: EPS }, block] },
        shortcut: null,
        post: "none",
      },
      {
        kind: "residual",
        body: {
          kind: "seq",
          layers: [
            { kind: "bn", name: key(name, "prebn2"), C, eps: EPS },
            convbn(key(name, "ffn_block.ffn_fc1"), C, C * expand, 1, { fuse: false }),
            { kind: "act", fn: "gelu" },
            convbn(key(name, "ffn_block.ffn_fc2"), C * expand, C, 1, { fuse: false }),
          ],
        },
        shortcut: null,
        post: "none",
      },
    ],
  };
}

const repmlpnetDefaults: Kw = {
  in_channels: 3,
  num_class: 1000,
  patch_size: [4, 4],
  num_blocks: [2, 2, 6, 2],
  channels: [192, 384, 768, 1536],
  hs: [64, 32, 16, 8],
  ws: [64, 32, 16, 8],
  sharesets_nums: [4, 8, 16, 32],
  reparam_conv_k: [3],
  globalperceptron_reduce: 4,
  use_checkpoint: false,
};

function repmlpnet(kw: Kw, name: string): Built {
  const inC = int(kw, "in_channels"), numClass = int(kw, "num_class"), patch = square(kw, "patch_size");
  const nb = ints(kw, "num_blocks"), ch = ints(kw, "channels"), hs = ints(kw, "hs"), ws = ints(kw, "ws");
  const ss = ints(kw, "sharesets_nums");
  const n = nb.length;
  if ([ch, hs, ws, ss].some((a) => a.length !== n)) {
    throw new InvalidArgumentError(
      "num_blocks, channels, hs, ws and sharesets_nums must have the same length",
    );
  }
  const layers: Layer[] = [
    convbn(key(name, "conv_embedding"), inC, ch[0], patch, { stride: patch, act: "relu", fuse: false }),
  ];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < nb[i]; j++) {
      layers.push(repmlpnetUnit({
        channels: ch[i],
        h: hs[i],
        w: ws[i],
        reparam_conv_k: kw.reparam_conv_k,
        globalperceptron_reduce: kw.globalperceptron_reduce,
        ffn_expand: 4,
        num_sharesets: ss[i],
      }, key(name, `stages.${i}.${j}`)));
    }
    if (i < n - 1) {
      layers.push(
        convbn(key(name, `embeds.${i}`), ch[i], ch[i + 1], 2, { stride: 2, act: "relu", fuse: false }),
      );
    }
  }
  layers.push(
    { kind: "bn", name: key(name, "head_norm"), C: ch[n - 1], eps: EPS },
    { kind: "gap" },
    { kind: "linear", name: key(name, "head"), inF: ch[n - 1], outF: numClass, bias: true },
  );
  // Any size whose stage maps divide into the stages' partitions runs (arch/shapes.ts). The default
  // is the native resolution (first stage map = its partition) when every later stage fits there
  // too, else the next size that fits (hs = (8, 4, 2, 2), patch 4: 64, not 32). Walking up from a
  // multiple of the patch meets a multiple first (the strided embeddings floor). Past the search
  // range (unusual hs), patch·2^(n−1)·lcm(hs) fits: stage i's map is 2^(n−1−i)·lcm(hs).
  const root: Layer = { kind: "seq", layers };
  const fit = (axis: "H" | "W", ps: number[]) =>
    nearestValid(root, inC, axis, ps[0] * patch, 1) ?? patch * 2 ** (n - 1) * ps.reduce(lcm, 1);
  return { root, input: [inC, fit("H", hs), fit("W", ws)], anyHW: true };
}

function lcm(a: number, b: number): number {
  let x = a, y = b;
  while (y) [x, y] = [y, x % y];
  return (a / x) * b;
}

function shortcut21(inC: number, outC: number, name: string): Layer | null {
  return inC === outC ? null : convbn(key(name, "shortcut"), inC, outC, 1, { fuse: true });
}

const ARCHS: Record<string, ArchDef> = {
  RepMLP: {
    doc: "2021 RepMLP block (repmlp.py): global + partition + local perceptrons, C→O on a fixed H×W",
    defaults: {
      in_channels: undefined,
      out_channels: undefined,
      H: undefined,
      W: undefined,
      h: undefined,
      w: undefined,
      reparam_conv_k: null,
      fc1_fc2_reduction: 4,
      fc3_groups: 1,
    },
    build(kw, name) {
      const l = repmlp21(kw, name);
      return { root: l, input: [l.inC, l.H, l.W] };
    },
  },
  RepMLPBottleneckBlock: {
    doc: "2021 ResNet bottleneck with a RepMLP in the middle (repmlp_blocks.py)",
    defaults: {
      in_channels: undefined,
      mid_channels: undefined,
      out_channels: undefined,
      r: 2,
      H: undefined,
      W: undefined,
      h: undefined,
      w: undefined,
      reparam_conv_k: null,
      fc1_fc2_reduction: 1,
      fc3_groups: 4,
    },
    build(kw, name) {
      const inC = int(kw, "in_channels"), mid = int(kw, "mid_channels"), outC = int(kw, "out_channels");
      const r = int(kw, "r");
      divides(r, mid, "mid_channels must be a multiple of r");
      const m = mid / r;
      const rep = repmlp21({ ...kw, in_channels: m, out_channels: m }, key(name, "btnk_repmlp"));
      const body: Layer = {
        kind: "seq",
        layers: [
          convbn(key(name, "btnk_conv1"), inC, mid, 1, { act: "relu", fuse: true }),
          convbn(key(name, "btnk_conv2"), mid, m, 3, { pad: 1, act: "relu", fuse: true }),
          rep,
          { kind: "act", fn: "relu" },
          convbn(key(name, "btnk_conv4"), m, mid, 3, { pad: 1, act: "relu", fuse: true }),
          convbn(key(name, "btnk_conv5"), mid, outC, 1, { fuse: true }),
        ],
      };
      return {
        root: { kind: "residual", body, shortcut: shortcut21(inC, outC, name), post: "relu" },
        input: [inC, rep.H, rep.W],
      };
    },
  },
  RepMLPLightBlock: {
    doc: "2021 light ResNet block with a RepMLP (repmlp_blocks.py)",
    defaults: {
      in_channels: undefined,
      mid_channels: undefined,
      out_channels: undefined,
      H: undefined,
      W: undefined,
      h: undefined,
      w: undefined,
      reparam_conv_k: null,
      fc1_fc2_reduction: 1,
      fc3_groups: 4,
    },
    build(kw, name) {
      const inC = int(kw, "in_channels"), mid = int(kw, "mid_channels"), outC = int(kw, "out_channels");
      const rep = repmlp21({ ...kw, in_channels: mid, out_channels: mid }, key(name, "light_repmlp"));
      const body: Layer = {
        kind: "seq",
        layers: [
          convbn(key(name, "light_conv1"), inC, mid, 1, { act: "relu", fuse: true }),
          rep,
          { kind: "act", fn: "relu" },
          convbn(key(name, "light_conv3"), mid, outC, 1, { fuse: true }),
        ],
      };
      return {
        root: { kind: "residual", body, shortcut: shortcut21(inC, outC, name), post: "relu" },
        input: [inC, rep.H, rep.W],
      };
    },
  },
  RepMLPBlock: {
    doc: "RepMLPNet block (repmlpnet.py, 2022): grouped FC over sharesets + SE-like global perceptron",
    defaults: {
      in_channels: undefined,
      out_channels: undefined,
      h: undefined,
      w: undefined,
      reparam_conv_k: null,
      globalperceptron_reduce: 4,
      num_sharesets: 1,
    },
    build(kw, name) {
      const l = repmlpnetBlock(kw, name);
      return { root: l, input: [l.C, null, null] };
    },
  },
  RepMLPNetUnit: {
    doc: "RepMLPNet unit: x + block(prebn1(x)), then + FFN(prebn2(·))",
    defaults: {
      channels: undefined,
      h: undefined,
      w: undefined,
      reparam_conv_k: undefined,
      globalperceptron_reduce: undefined,
      ffn_expand: 4,
      num_sharesets: 1,
    },
    build(kw, name) {
      return { root: repmlpnetUnit(kw, name), input: [int(kw, "channels"), null, null] };
    },
  },
  RepMLPNet: {
    doc: "RepMLPNet (CVPR 2022) classification network",
    defaults: repmlpnetDefaults,
    build: repmlpnet,
  },
};

/**
 * Register an extra architecture (the kit's own trainable models live in `kit.ts`).
 * Official names cannot be overridden.
 */
export function registerArch(name: string, def: ArchDef): void {
  if (ARCHS[name] && !ARCHS[name].kit) {
    throw new InvalidArgumentError(`architecture '${name}' already exists`);
  }
  ARCHS[name] = def;
}

/** Official preset networks (`create_RepMLPNet_*`). */
export const PRESETS: Record<string, { arch: string; kwargs: Kw }> = {
  "RepMLPNet-T224": {
    arch: "RepMLPNet",
    kwargs: {
      channels: [64, 128, 256, 512],
      hs: [56, 28, 14, 7],
      ws: [56, 28, 14, 7],
      num_blocks: [2, 2, 6, 2],
      reparam_conv_k: [1, 3],
      sharesets_nums: [1, 4, 16, 128],
    },
  },
  "RepMLPNet-T256": {
    arch: "RepMLPNet",
    kwargs: {
      channels: [64, 128, 256, 512],
      hs: [64, 32, 16, 8],
      ws: [64, 32, 16, 8],
      num_blocks: [2, 2, 6, 2],
      reparam_conv_k: [1, 3],
      sharesets_nums: [1, 4, 16, 128],
    },
  },
  "RepMLPNet-B224": {
    arch: "RepMLPNet",
    kwargs: {
      channels: [96, 192, 384, 768],
      hs: [56, 28, 14, 7],
      ws: [56, 28, 14, 7],
      num_blocks: [2, 2, 12, 2],
      reparam_conv_k: [1, 3],
      sharesets_nums: [1, 4, 32, 128],
    },
  },
  "RepMLPNet-B256": {
    arch: "RepMLPNet",
    kwargs: {
      channels: [96, 192, 384, 768],
      hs: [64, 32, 16, 8],
      ws: [64, 32, 16, 8],
      num_blocks: [2, 2, 12, 2],
      reparam_conv_k: [1, 3],
      sharesets_nums: [1, 4, 32, 128],
    },
  },
  "RepMLPNet-D256": {
    arch: "RepMLPNet",
    kwargs: {
      channels: [80, 160, 320, 640],
      hs: [64, 32, 16, 8],
      ws: [64, 32, 16, 8],
      num_blocks: [2, 2, 18, 2],
      reparam_conv_k: [1, 3],
      sharesets_nums: [1, 4, 16, 128],
    },
  },
  "RepMLPNet-L256": {
    arch: "RepMLPNet",
    kwargs: {
      channels: [96, 192, 384, 768],
      hs: [64, 32, 16, 8],
      ws: [64, 32, 16, 8],
      num_blocks: [2, 2, 18, 2],
      reparam_conv_k: [1, 3],
      sharesets_nums: [1, 4, 32, 256],
    },
  },
};

/** Names accepted by {@link buildModel}: official classes and presets. */
export function archNames(): string[] {
  return [...Object.keys(ARCHS), ...Object.keys(PRESETS)];
}

/** One-line description of an architecture name (for `--help`). */
export function archDoc(name: string): string {
  if (PRESETS[name]) return `official preset: ${PRESETS[name].arch}(${JSON.stringify(PRESETS[name].kwargs)})`;
  return ARCHS[name]?.doc ?? "";
}

/**
 * Build a model description from an official class name (or preset) and Python-style kwargs.
 * `deploy` and `use_checkpoint` kwargs are accepted and ignored (they do not change the weights).
 */
export function buildModel(arch: string, kwargs: Kw = {}, opts: { prefix?: string } = {}): ModelDesc {
  let def = ARCHS[arch];
  let kw: Kw = { ...kwargs };
  let archName = arch;
  if (!def && PRESETS[arch]) {
    def = ARCHS[PRESETS[arch].arch];
    archName = PRESETS[arch].arch;
    kw = { ...PRESETS[arch].kwargs, ...kwargs };
  }
  if (!def) {
    throw new InvalidArgumentError(
      `unknown architecture '${arch}'`,
      `choose one of: ${archNames().join(", ")}`,
    );
  }
  delete kw.deploy;
  const full: Kw = {};
  for (const [k, v] of Object.entries(def.defaults)) {
    if (k in kw) full[k] = kw[k];
    else if (v === undefined) {
      throw new InvalidArgumentError(
        `${archName} needs kwarg '${k}'`,
        `pass --kwargs '{"${k}": …}' with the same value as the Python constructor`,
      );
    } else full[k] = v;
  }
  const unknown = Object.keys(kw).filter((k) => !(k in def.defaults));
  if (unknown.length) {
    throw new InvalidArgumentError(
      `${archName} has no kwarg(s) ${unknown.join(", ")}`,
      `valid kwargs: ${Object.keys(def.defaults).join(", ")}`,
    );
  }
  const { root, input, anyHW } = def.build(full, opts.prefix ?? "");
  return { arch: archName, kwargs: full, input, root, ...(anyHW ? { anyHW } : {}) };
}
