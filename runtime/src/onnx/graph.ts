/**
 * ONNX graph from a model description and its state_dict — the same layer tree the reference
 * forward and the fold walk, so there is no second hand-written copy of any model.
 *
 * Two structures:
 *  - `deploy` (default): the folded model. Conv+BN pairs are fused into one Conv with bias (also the
 *    2022 `conv_bn` the official deploy keeps unfused), an eval BN right before a pad-free conv or a
 *    GAP→Linear head is folded into that layer, other BNs become one Mul+Add. The partition FC (fc3)
 *    is a batched MatMul over [groups, rows, h·w] (or the official grouped 1×1 Conv, `fc3: "conv"`).
 *  - `train`: the training-time structure (fc3 without bias, then BatchNormalization, plus every
 *    conv branch as Conv+BatchNormalization), from a TRAIN state_dict, for the deploy-vs-train bench.
 *
 * RepMLPNet's re-assembly quirk is kept exactly: rows leave the partition step ordered
 * (n, ip, jp, j) and are read back as (n, j', ip', jp') — in the MatMul layout both are plain
 * reshapes of the row axis, so the quirk costs nothing.
 *
 * The batch axis is dynamic; H and W are fixed per graph: the partition counts H/h, W/w and the
 * quirk's row order are baked into the Reshape/Transpose constants, so a model that takes several
 * sizes gets one graph per size (`inputHW`; the session layer caches one ORT session per size).
 */
import {
  type ConvBNLayer,
  type ConvLayer,
  type ConvScaleLayer,
  hasGP21,
  key,
  type Layer,
  type LinearLayer,
  type Mode,
  type ModelDesc,
  type RepMLP21Layer,
  type RepMLPNetBlockLayer,
} from "../arch/ir.ts";
import { acceptsAnyHW, checkInputHW } from "../arch/shapes.ts";
import { InvalidArgumentError, InvalidInputError } from "../errors.ts";
import { type BNAffine, foldStateDict, fuseBNBeforeConv, fuseBNIntoConv } from "../fold.ts";
import { quantizeInt8PerChannel } from "../io/bundle.ts";
import { detectMode, Params } from "../params.ts";
import type { StateDict } from "../tensor.ts";
import { type Attr, type Compute, DT, GraphBuilder } from "./proto.ts";

/** How the partition FC (fc3) is emitted. */
export type Fc3Impl = "matmul" | "conv";

/**
 * Weight precision inside the graph.
 *  - `fp32`: float32 initializers (fp16/int8 bundles are upcast at load).
 *  - `fp16`: float16 initializers and float16 activations (Cast at input and output): for WebGPU
 *    adapters with `shader-f16`.
 *  - `int8-dynamic`: FC weights int8 per output channel; DynamicQuantizeLinear + MatMulInteger.
 *  - `int8-qdq`: FC weights int8 + DequantizeLinear in the graph (ORT does not constant-fold it, so
 *    it runs on every inference; kept for the benchmark that shows why it is not the default).
 */
export type Precision = "fp32" | "fp16" | "int8-dynamic" | "int8-qdq";

/** Options of {@link buildOnnx}. */
export interface BuildOptions {
  /** `deploy` (default) or the training-time structure (needs a TRAIN state_dict). */
  structure?: Mode;
  /**
   * Input height/width: required for bare blocks/units (no natural size); any size that fits for
   * RepMLPNet (default: its native size); must equal the fixed size of other models.
   */
  inputHW?: [number, number];
  /** Partition FC implementation; default `matmul` (measured faster everywhere, see docs/runtime.md). */
  fc3?: Fc3Impl;
  /** Default `fp32`. */
  precision?: Precision;
  /** Fold BNs into neighbouring convs/linears at build time (deploy only). Default true. */
  fuse?: boolean;
  /** FC weights with fewer elements than this stay float in int8 graphs (as in int8 bundles). Default 1024. */
  int8MinElements?: number;
}

/** Result of {@link buildOnnx}. */
export interface BuiltGraph {
  /** Serialised ModelProto. */
  bytes: Uint8Array;
  /** Input [C, H, W] (batch excluded). */
  inputShape: [number, number, number];
  /** Output shape, batch excluded. */
  outputShape: number[];
  structure: Mode;
  precision: Precision;
  fc3: Fc3Impl;
  /** Number of nodes and total initializer bytes. */
  nodes: number;
  weightBytes: number;
}

type Shape = number[];

class Ctx {
  readonly b: GraphBuilder;
  readonly p: Params;
  readonly mode: Mode;
  readonly fc3: Fc3Impl;
  readonly precision: Precision;
  readonly fuse: boolean;
  readonly int8Min: number;
  constructor(p: Params, mode: Mode, o: Required<Omit<BuildOptions, "inputHW" | "structure">>) {
    this.b = new GraphBuilder(o.precision === "fp16" ? "fp16" : "fp32" as Compute);
    this.p = p;
    this.mode = mode;
    this.fc3 = o.fc3;
    this.precision = o.precision;
    this.fuse = o.fuse && mode === "deploy";
    this.int8Min = o.int8MinElements;
  }
  get(k: string): Float32Array {
    return this.p.get(k);
  }
  scalar(hint: string, v: number): string {
    return this.b.float(hint, Float32Array.of(v), []);
  }
}

/** BatchNormalization node with the checkpoint's statistics (training structure). */
function bnNode(c: Ctx, x: string, name: string, C: number, eps: number): string {
  const f = (s: string) => c.b.float(key(name, s), c.get(key(name, s)), [C]);
  return c.b.op("BatchNormalization", [x, f("weight"), f("bias"), f("running_mean"), f("running_var")], {
    epsilon: { f: eps },
  });
}

/** y = x·t[c] + b[c] as Mul+Add over channel axis 1 of a rank-`rank` tensor. */
function affine(c: Ctx, x: string, a: BNAffine, hint: string, rank: number): string {
  const dims = [a.t.length, ...Array(Math.max(0, rank - 2)).fill(1)];
  const m = c.b.op("Mul", [x, c.b.float(`${hint}.scale`, a.t, dims)]);
  return c.b.op("Add", [m, c.b.float(`${hint}.shift`, a.b, dims)]);
}

function conv(
  c: Ctx,
  x: string,
  hint: string,
  W: Float32Array,
  bias: Float32Array | null,
  l: { outC: number; inC: number; k: number; stride: number; pad: number; groups: number },
): string {
  const ins = [x, c.b.float(`${hint}.weight`, W, [l.outC, l.inC / l.groups, l.k, l.k])];
  if (bias) ins.push(c.b.float(`${hint}.bias`, bias, [l.outC]));
  const attrs: Record<string, Attr> = {
    kernel_shape: [l.k, l.k],
    strides: [l.stride, l.stride],
    pads: [l.pad, l.pad, l.pad, l.pad],
    group: l.groups,
  };
  return c.b.op("Conv", ins, attrs);
}

/** Per-output-row int8 of a [rows, cols] weight: the bundles' quantiser, so int8 bundle values re-quantise losslessly. */
function quantizeRows(W: Float32Array, rows: number, cols: number): { q: Int8Array; scale: Float32Array } {
  const { q, scale } = quantizeInt8PerChannel({ dtype: "float32", shape: [rows, cols], data: W });
  return { q: q.data, scale: scale.data };
}

/** Transpose per group: rows (G·M, K) → (G, K, M). */
function transposeGroups<T extends Float32Array | Int8Array>(
  W: T,
  G: number,
  M: number,
  K: number,
  out: T,
): T {
  for (let g = 0; g < G; g++) {
    for (let m = 0; m < M; m++) {
      const src = (g * M + m) * K;
      for (let k = 0; k < K; k++) out[(g * K + k) * M + m] = W[src + k];
    }
  }
  return out;
}

/**
 * Grouped FC as one (batched) MatMul: x is [G, R, K] (or [R, K] when G = 1), the weight is given
 * PyTorch-style as G·M rows of K, bias G·M (or null). Output [G, R, M] (or [R, M]).
 */
function fc(
  c: Ctx,
  x: string,
  hint: string,
  G: number,
  K: number,
  M: number,
  W: Float32Array,
  bias: Float32Array | null,
): string {
  const b = c.b;
  const bdims = G === 1 ? [K, M] : [G, K, M];
  const odims = G === 1 ? [M] : [G, 1, M];
  let y: string;
  const int8 = (c.precision === "int8-dynamic" || c.precision === "int8-qdq") && W.length >= c.int8Min;
  if (int8 && c.precision === "int8-dynamic") {
    const { q, scale } = quantizeRows(W, G * M, K);
    const Bq = b.raw(
      `${hint}.weight_q`,
      DT.INT8,
      transposeGroups(q, G, M, K, new Int8Array(q.length)),
      bdims,
    );
    const [xq, xs, xzp] = b.ops("DynamicQuantizeLinear", [x], {}, 3);
    const zp = b.raw(`${hint}.weight_zp`, DT.INT8, new Int8Array(1), []);
    const acc = b.op("MatMulInteger", [xq, Bq, xzp, zp]);
    const s = b.op("Mul", [xs, b.float32(`${hint}.weight_scale`, scale, odims)]);
    y = b.op("Mul", [b.op("Cast", [acc], { to: DT.FLOAT }), s]);
  } else if (int8) {
    // DequantizeLinear takes one scale axis: per column of [K, M] for G = 1; for G > 1 per row of the
    // PyTorch layout [G·M, K], then reshape/transpose to [G, K, M].
    const { q, scale } = quantizeRows(W, G * M, K);
    const sc = b.float32(`${hint}.weight_scale`, scale, [G * M]);
    let Bt: string;
    if (G === 1) {
      const Wq = b.raw(`${hint}.weight_q`, DT.INT8, transposeGroups(q, 1, M, K, new Int8Array(q.length)), [
        K,
        M,
      ]);
      Bt = b.op("DequantizeLinear", [Wq, sc], { axis: 1 });
    } else {
      const deq = b.op("DequantizeLinear", [b.raw(`${hint}.weight_q`, DT.INT8, q, [G * M, K]), sc], {
        axis: 0,
      });
      Bt = b.op("Transpose", [b.reshape(deq, [G, M, K])], { perm: [0, 2, 1] });
    }
    y = b.op("MatMul", [x, Bt]);
  } else {
    const Bt = transposeGroups(W, G, M, K, new Float32Array(W.length));
    y = b.op("MatMul", [x, b.float(`${hint}.weight`, Bt, bdims)]);
  }
  return bias ? b.op("Add", [y, b.float(`${hint}.bias`, bias, odims)]) : y;
}

function act(c: Ctx, x: string, fn: "relu" | "gelu" | "sigmoid"): string {
  if (fn === "relu") return c.b.op("Relu", [x]);
  if (fn === "sigmoid") return c.b.op("Sigmoid", [x]);
  // Exact GELU, in the Div→Erf→Add→Mul→Mul form ORT's GeluFusion recognises.
  const d = c.b.op("Div", [x, c.scalar("sqrt2", Math.SQRT2)]);
  const e = c.b.op("Add", [c.b.op("Erf", [d]), c.scalar("one", 1)]);
  return c.b.op("Mul", [c.b.op("Mul", [x, e]), c.scalar("half", 0.5)]);
}

function convParams(
  c: Ctx,
  l: ConvLayer | ConvBNLayer,
): { W: Float32Array; bias: Float32Array | null; post?: BNAffine } {
  if (l.kind === "conv") {
    return { W: c.get(key(l.name, "weight")), bias: l.bias ? c.get(key(l.name, "bias")) : null };
  }
  const cn = key(l.name, "conv");
  if (l.fuse && c.p.opt(key(cn, "bias"))) {
    return { W: c.get(key(cn, "weight")), bias: c.get(key(cn, "bias")) };
  }
  const W = c.get(key(cn, "weight"));
  const a = c.p.bn(key(l.name, "bn"), l.eps);
  if (!c.fuse) return { W, bias: null, post: a };
  return fuseBNIntoConv(W, a);
}

function emitConv(
  c: Ctx,
  l: ConvLayer | ConvBNLayer,
  x: string,
  s: Shape,
  pre: BNAffine | null,
): [string, Shape] {
  const [C, H, W] = s;
  if (C !== l.inC) throw new InvalidInputError(`${l.name}: expected ${l.inC} channels, got ${C}`);
  const Ho = Math.floor((H + 2 * l.pad - l.k) / l.stride) + 1;
  const Wo = Math.floor((W + 2 * l.pad - l.k) / l.stride) + 1;
  const hint = l.kind === "conv" ? l.name : key(l.name, "conv");
  let y: string;
  if (c.mode === "train" && l.kind === "convbn") {
    y = conv(c, x, hint, c.get(key(hint, "weight")), null, l);
    y = bnNode(c, y, key(l.name, "bn"), l.outC, l.eps);
  } else {
    let { W: Wt, bias, post } = convParams(c, l);
    if (pre) ({ W: Wt, bias } = fuseBNBeforeConv(Wt, bias, pre, { ...l, taps: l.k * l.k }));
    y = conv(c, x, hint, Wt, bias, l);
    if (post) y = affine(c, y, post, key(l.name, "bn"), 4);
  }
  if (l.kind === "convbn" && l.act === "relu") y = c.b.op("Relu", [y]);
  return [y, [l.outC, Ho, Wo]];
}

function emitLinear(c: Ctx, l: LinearLayer, x: string, s: Shape, pre: BNAffine | null): [string, Shape] {
  if (s.length !== 1 || s[0] !== l.inF) {
    throw new InvalidInputError(`${l.name}: expected ${l.inF} features, got shape [${s}]`);
  }
  let W = c.get(key(l.name, "weight"));
  let bias = l.bias ? c.get(key(l.name, "bias")) : null;
  if (pre) ({ W, bias } = fuseBNBeforeConv(W, bias, pre, { outC: l.outF, inC: l.inF, groups: 1, taps: 1 }));
  return [fc(c, x, l.name, 1, l.inF, l.outF, W, bias), [l.outF]];
}

/** Conv + bias, then the per-channel scale (folded into the conv in deploy weights), optional ReLU. */
function emitConvScale(c: Ctx, l: ConvScaleLayer, x: string, s: Shape): [string, Shape] {
  const [C, H, W] = s;
  if (C !== l.inC) throw new InvalidInputError(`${l.name}: expected ${l.inC} channels, got ${C}`);
  const cn = key(l.name, "conv"), o = (v: number) => Math.floor((v + 2 * l.pad - l.k) / l.stride) + 1;
  let y = conv(c, x, cn, c.get(key(cn, "weight")), c.get(key(cn, "bias")), { ...l, groups: 1 });
  if (c.mode === "train") {
    const sn = key(l.name, "scale");
    y = affine(c, y, { t: c.get(key(sn, "weight")), b: c.get(key(sn, "bias")) }, sn, 4);
  }
  if (l.act === "relu") y = c.b.op("Relu", [y]);
  return [y, [l.outC, o(H), o(W)]];
}

function checkParts(name: string, H: number, W: number, h: number, w: number) {
  if (H % h !== 0 || W % w !== 0) {
    throw new InvalidInputError(`${name}: input ${H}×${W} is not divisible into ${h}×${w} partitions`);
  }
}

function emitRepMLPNetBlock(c: Ctx, l: RepMLPNetBlockLayer, x: string, s: Shape): string {
  const [C, H, W] = s;
  const { h, w, S, name } = l;
  if (C !== l.C) throw new InvalidInputError(`${name}: expected ${l.C} channels, got ${C}`);
  checkParts(name || "RepMLPBlock", H, W, h, w);
  const b = c.b, hw = h * w, hp = H / h, wp = W / w, G = C / S;
  // Global perceptron: sigmoid(fc2(relu(fc1(mean(x))))) as (N, C, 1, 1).
  const gl = (n: string, i: number, o: number) => ({
    outC: o,
    inC: i,
    k: 1,
    stride: 1,
    pad: 0,
    groups: 1,
    n,
  });
  let g = b.op("GlobalAveragePool", [x]);
  const l1 = gl("gp.fc1", C, C / l.r), l2 = gl("gp.fc2", C / l.r, C);
  for (const [L, fn] of [[l1, "Relu"], [l2, "Sigmoid"]] as const) {
    const k = key(name, L.n);
    g = b.op(fn, [conv(c, g, k, c.get(key(k, "weight")), c.get(key(k, "bias")), L)]);
  }
  let out: string;
  if (c.mode === "deploy" && c.fc3 === "matmul") {
    const x7 = b.reshape(x, [-1, G, S, hp, h, wp, w]);
    const rows = b.reshape(b.op("Transpose", [x7], { perm: [2, 0, 3, 5, 1, 4, 6] }), [S, -1, hw]);
    const F = fc(
      c,
      rows,
      key(name, "fc3"),
      S,
      hw,
      hw,
      c.get(key(name, "fc3.weight")),
      c.get(key(name, "fc3.bias")),
    );
    // Rows (n, ip, jp, j) read back as (n, j', ip', jp'): the official reshape order.
    const F7 = b.reshape(F, [S, -1, G, hp, wp, h, w]);
    out = b.reshape(b.op("Transpose", [F7], { perm: [1, 2, 0, 3, 5, 4, 6] }), [-1, C, H, W]);
  } else {
    // Official layout: P = x.reshape(N,C,hp,h,wp,w).permute(0,2,4,1,3,5), rows of S·h·w.
    const P = b.op("Transpose", [b.reshape(x, [-1, C, hp, h, wp, w])], { perm: [0, 2, 4, 1, 3, 5] });
    const W3 = c.get(key(name, "fc3.weight"));
    const bias = c.mode === "deploy" ? c.get(key(name, "fc3.bias")) : null;
    let F: string;
    if (c.fc3 === "conv") {
      const fl = { outC: S * hw, inC: S * hw, k: 1, stride: 1, pad: 0, groups: S };
      F = conv(c, b.reshape(P, [-1, S * hw, 1, 1]), key(name, "fc3"), W3, bias, fl);
    } else {
      const t = b.op("Transpose", [b.reshape(P, [-1, S, hw])], { perm: [1, 0, 2] });
      F = b.op("Transpose", [fc(c, t, key(name, "fc3"), S, hw, hw, W3, bias)], { perm: [1, 0, 2] });
    }
    if (c.mode === "train") {
      F = bnNode(c, b.reshape(F, [-1, S, h, w]), key(name, "fc3_bn"), S, l.eps);
      const rows = b.reshape(P, [-1, S, h, w]);
      for (const k of l.ks) {
        const cn = key(name, `repconv${k}.conv`);
        const kl = { outC: S, inC: S, k, stride: 1, pad: Math.floor(k / 2), groups: S };
        const br = bnNode(
          c,
          conv(c, rows, cn, c.get(key(cn, "weight")), null, kl),
          key(name, `repconv${k}.bn`),
          S,
          l.eps,
        );
        F = b.op("Add", [F, br]);
      }
    }
    const F6 = b.reshape(F, [-1, hp, wp, S, h, w]);
    out = b.reshape(b.op("Transpose", [F6], { perm: [0, 3, 1, 4, 2, 5] }), [-1, C, H, W]);
  }
  return b.op("Mul", [out, g]);
}

function emitRepMLP21(c: Ctx, l: RepMLP21Layer, x: string, s: Shape): string {
  const [C, H, W] = s;
  const { h, w, g, name } = l;
  if (C !== l.inC || H !== l.H || W !== l.W) {
    throw new InvalidInputError(`${name || "RepMLP"}: expected input (${l.inC}, ${l.H}, ${l.W}), got (${s})`);
  }
  const b = c.b, O = l.outC, hw = h * w, hp = H / h, wp = W / w, Cg = C / g, Og = O / g;
  let x6 = b.reshape(x, [-1, C, hp, h, wp, w]);
  if (hasGP21(l)) {
    // Additive global perceptron: one scalar per (channel, partition), flattened c·hp·wp + ip·wp + jp.
    const Pn = hp * wp, P = C * Pn, Pr = P / l.r;
    // (In deploy weights the BN after AvgPool is already folded into fc1.)
    let v = b.op("AveragePool", [x], { kernel_shape: [h, w], strides: [h, w] });
    if (c.mode === "train") v = bnNode(c, v, key(name, "avg.bn"), C, l.eps);
    v = b.op("Flatten", [v], { axis: 1 });
    const f1 = key(name, "fc1_fc2.fc1"), f2 = key(name, "fc1_fc2.fc2");
    v = b.op("Relu", [fc(c, v, f1, 1, P, Pr, c.get(key(f1, "weight")), c.get(key(f1, "bias")))]);
    v = fc(c, v, f2, 1, Pr, P, c.get(key(f2, "weight")), c.get(key(f2, "bias")));
    x6 = b.op("Add", [x6, b.reshape(v, [-1, C, hp, 1, wp, 1])]);
  }
  const W3 = c.get(key(name, "fc3.weight"));
  const bias = c.mode === "deploy" ? c.get(key(name, "fc3.bias")) : null;
  if (c.mode === "deploy" && c.fc3 === "matmul") {
    const rows = g === 1
      ? b.reshape(b.op("Transpose", [x6], { perm: [0, 2, 4, 1, 3, 5] }), [-1, C * hw])
      : b.reshape(
        b.op("Transpose", [b.reshape(x6, [-1, g, Cg, hp, h, wp, w])], { perm: [1, 0, 3, 5, 2, 4, 6] }),
        [g, -1, Cg * hw],
      );
    const F = fc(c, rows, key(name, "fc3"), g, Cg * hw, Og * hw, W3, bias);
    const F7 = b.reshape(F, [g, -1, hp, wp, Og, h, w]);
    return b.reshape(b.op("Transpose", [F7], { perm: [1, 0, 4, 2, 5, 3, 6] }), [-1, O, H, W]);
  }
  const P = b.op("Transpose", [x6], { perm: [0, 2, 4, 1, 3, 5] });
  let F: string;
  if (c.fc3 === "conv") {
    const fl = { outC: O * hw, inC: C * hw, k: 1, stride: 1, pad: 0, groups: g };
    F = b.reshape(conv(c, b.reshape(P, [-1, C * hw, 1, 1]), key(name, "fc3"), W3, bias, fl), [-1, O * hw]);
  } else if (g === 1) {
    F = fc(c, b.reshape(P, [-1, C * hw]), key(name, "fc3"), 1, C * hw, O * hw, W3, bias);
  } else {
    const t = b.op("Transpose", [b.reshape(P, [-1, g, Cg * hw])], { perm: [1, 0, 2] });
    const y = b.op("Transpose", [fc(c, t, key(name, "fc3"), g, Cg * hw, Og * hw, W3, bias)], {
      perm: [1, 0, 2],
    });
    F = b.reshape(y, [-1, O * hw]);
  }
  if (c.mode === "train") {
    F = bnNode(c, F, key(name, "fc3_bn"), O * hw, l.eps); // BN1d: one per output neuron
    const rows = b.reshape(P, [-1, C, h, w]);
    for (const k of l.ks) {
      const cn = key(name, `repconv${k}.conv`);
      const kl = { outC: O, inC: C, k, stride: 1, pad: Math.floor(k / 2), groups: g };
      const br = bnNode(
        c,
        conv(c, rows, cn, c.get(key(cn, "weight")), null, kl),
        key(name, `repconv${k}.bn`),
        O,
        l.eps,
      );
      F = b.op("Add", [F, b.reshape(br, [-1, O * hw])]);
    }
  }
  const F6 = b.reshape(F, [-1, hp, wp, O, h, w]);
  return b.reshape(b.op("Transpose", [F6], { perm: [0, 3, 1, 4, 2, 5] }), [-1, O, H, W]);
}

function noPad(l: Layer | undefined): boolean {
  return !!l && (l.kind === "conv" || l.kind === "convbn") && l.pad === 0;
}

function emit(c: Ctx, l: Layer, x: string, s: Shape, pre: BNAffine | null = null): [string, Shape] {
  switch (l.kind) {
    case "conv":
    case "convbn":
      return emitConv(c, l, x, s, pre);
    case "linear":
      return emitLinear(c, l, x, s, pre);
    case "bn": {
      if (s[0] !== l.C) throw new InvalidInputError(`${l.name}: expected ${l.C} channels, got ${s[0]}`);
      if (c.mode === "train") return [bnNode(c, x, l.name, l.C, l.eps), s];
      return [affine(c, x, c.p.bn(l.name, l.eps), l.name, s.length + 1), s];
    }
    case "act":
      return [act(c, x, l.fn), s];
    case "seq": {
      let y = x, sh = s;
      let pending: BNAffine | null = pre;
      const L = l.layers;
      for (let i = 0; i < L.length; i++) {
        const cur = L[i];
        // An eval BN right before a pad-free conv, or before GAP→Linear, folds into that layer exactly.
        if (c.fuse && cur.kind === "bn" && !pending && sh[0] === cur.C) {
          const foldable = noPad(L[i + 1]) || (L[i + 1]?.kind === "gap" && L[i + 2]?.kind === "linear");
          if (foldable) {
            pending = c.p.bn(cur.name, cur.eps);
            continue;
          }
        }
        if (cur.kind === "gap" && pending) {
          [y, sh] = emit(c, cur, y, sh);
          continue; // mean(x·t + b) = mean(x)·t + b: the affine passes through to the Linear
        }
        [y, sh] = emit(c, cur, y, sh, pending);
        pending = null;
      }
      if (pending) [y] = [affine(c, y, pending, "pending", sh.length + 1)];
      return [y, sh];
    }
    case "residual": {
      if (pre) {
        x = affine(c, x, pre, "pre", s.length + 1);
      }
      const [yb, sb] = emit(c, l.body, x, s);
      const [ys, ss] = l.shortcut ? emit(c, l.shortcut, x, s) : [x, s];
      if (sb.join() !== ss.join()) throw new InvalidInputError(`residual: body [${sb}] vs shortcut [${ss}]`);
      let y = c.b.op("Add", [yb, ys]);
      if (l.post === "relu") y = c.b.op("Relu", [y]);
      return [y, sb];
    }
    case "gap":
      return [c.b.op("Flatten", [c.b.op("GlobalAveragePool", [x])], { axis: 1 }), [s[0]]];
    case "flatten":
      return [c.b.op("Flatten", [x], { axis: 1 }), [s.reduce((a, v) => a * v, 1)]];
    case "l2norm": {
      const n = c.b.op("ReduceL2", [x], { axes: [1], keepdims: 1 });
      return [c.b.op("Div", [x, c.b.op("Max", [n, c.scalar("eps", 1e-12)])]), s];
    }
    case "repmlpnet_block":
      if (pre) x = affine(c, x, pre, "pre", 4);
      return [emitRepMLPNetBlock(c, l, x, s), s];
    case "repmlp21":
      if (pre) x = affine(c, x, pre, "pre", 4);
      return [emitRepMLP21(c, l, x, s), [l.outC, s[1], s[2]]];
    case "convscale":
      if (pre) x = affine(c, x, pre, "pre", 4);
      return emitConvScale(c, l, x, s);
    case "maxpool":
    case "avgpool": {
      if (pre) x = affine(c, x, pre, "pre", 4);
      const op = l.kind === "maxpool" ? "MaxPool" : "AveragePool";
      const o = (v: number) => Math.floor((v - l.k) / l.stride) + 1;
      return [c.b.op(op, [x], { kernel_shape: [l.k, l.k], strides: [l.stride, l.stride] }), [
        s[0],
        o(s[1]),
        o(s[2]),
      ]];
    }
    case "zeropad":
      if (pre) x = affine(c, x, pre, "pre", 4);
      return [c.b.op("Pad", [x, c.b.i64([0, 0, 0, 0, 0, l.c, l.h, l.w])]), [
        s[0] + l.c,
        s[1] + l.h,
        s[2] + l.w,
      ]];
  }
}

/**
 * The concrete [C, H, W] input of a graph: `inputHW` when given (any size that fits a model that
 * takes several, see arch/shapes.ts), else the description's (default) size. Sizes that do not fit
 * → InputSizeError naming the stage and partition.
 */
export function resolveInput(desc: ModelDesc, inputHW?: [number, number]): [number, number, number] {
  const [C, H, W] = desc.input;
  if (inputHW && !acceptsAnyHW(desc) && (inputHW[0] !== H || inputHW[1] !== W)) {
    checkInputHW(desc, inputHW[0], inputHW[1]); // names the layer that fixes the size, where one does
    throw new InvalidArgumentError(`${desc.arch} has a fixed input ${C}×${H}×${W}, got inputHW ${inputHW}`);
  }
  const h = inputHW?.[0] ?? H, w = inputHW?.[1] ?? W;
  if (h === null || w === null) {
    throw new InvalidArgumentError(
      `${desc.arch} takes any input size: pass inputHW ([H, W], e.g. --input-hw 28,28)`,
    );
  }
  if (!Number.isInteger(h) || !Number.isInteger(w) || h <= 0 || w <= 0) {
    throw new InvalidArgumentError(`input size must be positive integers, got ${h}×${w}`);
  }
  checkInputHW(desc, h, w);
  return [C, h, w];
}

/**
 * Build the ONNX graph of `desc` from a state_dict. A TRAIN state_dict is folded first for the
 * deploy structure; the train structure needs a TRAIN state_dict. Throws ArchMismatchError when the
 * state_dict does not fit, InvalidArgumentError / InvalidInputError for bad options or sizes.
 */
export function buildOnnx(desc: ModelDesc, sd: StateDict, opts: BuildOptions = {}): BuiltGraph {
  const structure = opts.structure ?? "deploy";
  const precision = opts.precision ?? "fp32";
  const fc3 = opts.fc3 ?? "matmul";
  if (!["deploy", "train"].includes(structure)) {
    throw new InvalidArgumentError(`unknown structure '${structure}'`);
  }
  if (!["fp32", "fp16", "int8-dynamic", "int8-qdq"].includes(precision)) {
    throw new InvalidArgumentError(`unknown precision '${precision}' (fp32, fp16, int8-dynamic, int8-qdq)`);
  }
  if (fc3 !== "matmul" && fc3 !== "conv") {
    throw new InvalidArgumentError(`fc3 must be matmul or conv, got '${fc3}'`);
  }
  const mode = detectMode(desc, sd);
  if (structure === "train" && mode !== "train") {
    throw new InvalidArgumentError(
      "the training-structure graph needs a TRAIN state_dict (got a deploy one)",
    );
  }
  if (structure === "train" && precision !== "fp32") {
    throw new InvalidArgumentError("the training-structure graph is fp32 only");
  }
  const weights = structure === "deploy" && mode === "train" ? foldStateDict(desc, sd) : sd;
  const inShape = resolveInput(desc, opts.inputHW);
  const c = new Ctx(new Params(weights), structure, {
    fc3,
    precision,
    fuse: opts.fuse ?? true,
    int8MinElements: opts.int8MinElements ?? 1024,
  });
  let x = "input";
  if (precision === "fp16") x = c.b.op("Cast", [x], { to: DT.FLOAT16 });
  let [y, outShape] = emit(c, desc.root, x, inShape);
  if (precision === "fp16") y = c.b.op("Cast", [y], { to: DT.FLOAT });
  // Name the graph output "output" through an Identity so the value name is stable.
  c.b.nodes.push({ opType: "Identity", input: [y], output: ["output"], name: "output" });
  const bytes = c.b.finish("input", inShape, "output", outShape, {
    arch: desc.arch,
    kwargs: JSON.stringify(desc.kwargs),
    structure,
    precision,
    fc3,
  });
  let weightBytes = 0;
  for (const t of c.b.inits) weightBytes += t.rawData?.length ?? 0;
  return {
    bytes,
    inputShape: inShape,
    outputShape: outShape,
    structure,
    precision,
    fc3,
    nodes: c.b.nodes.length,
    weightBytes,
  };
}
