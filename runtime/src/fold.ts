/**
 * Structural re-parameterisation: training-time state_dict → deploy-mode state_dict with the
 * official deploy keys. Equations (eval-mode BN, eps from the description):
 *
 *   BN → affine:           t = γ / √(σ² + ε),   b = β − μ·t
 *   Conv+BN → Conv:        W' = W·t[o],        bias' = b                         (2021 ConvBN/ConvBNReLU)
 *   fc3 + BN → fc3:        W3' = W3·t[row],    b3' = b[row]                      (BN1d per neuron; BN2d per shareset
 *                                                                                 is repeat_interleave(t, h·w))
 *   conv branches:         K = Σ_k pad_{(Kmax−k)/2}(W_k·t_k),   bK = Σ_k b_k
 *   conv → FC (identity-matrix construction, written in closed form):
 *       FC[o·hw + y·w + x, cl·hw + y2·w + x2] = K[o, cl, y2−y+Kmax/2, x2−x+Kmax/2]   (0 outside the kernel)
 *     i.e. row (o, y, x) of FC is what convolving the one-hot input e_(cl,y2,x2) gives at (o, y, x).
 *     Rows index OUTPUT neurons, columns the input channels of o's group — which is why it stays
 *     correct when in_channels ≠ out_channels (the official 2021 fold reshapes with O where C belongs).
 *   fc3 (deploy) = FC + W3',   bias = repeat_interleave(bK, hw) + b3'
 *   2021 global perceptron:  the BN after AvgPool folds into fc1:
 *       fc1.W' = fc1.W · repeat_interleave(t, hp·wp)[None, :],   fc1.b' = fc1.b + fc1.W @ repeat_interleave(b, hp·wp)
 *
 * Kernels larger than the partition work: taps falling outside the partition are simply unused.
 */
import {
  hasGP21,
  key,
  type Layer,
  type ModelDesc,
  paramSpecs,
  type RepMLP21Layer,
  type RepMLPNetBlockLayer,
  walk,
} from "./arch/ir.ts";
import { Params } from "./params.ts";
import type { StateDict, Tensor } from "./tensor.ts";

/** Eval-mode BN as a per-channel affine y = x·t[c] + b[c] (see `Params.bn`). */
export interface BNAffine {
  t: Float32Array;
  b: Float32Array;
}

/**
 * Conv+BN → Conv (a BN or per-channel affine after a conv or linear, over its output channels):
 * W'[o] = W[o]·t[o], bias' = b (or, when the conv has a bias c, c[o]·t[o] + b[o]). `W` is laid out
 * output-channel first (O, …). The onnx graph uses it too.
 */
export function fuseBNIntoConv(
  W: Float32Array,
  bn: BNAffine,
  convBias?: Float32Array,
): { W: Float32Array; bias: Float32Array } {
  const per = W.length / bn.t.length;
  const Wf = new Float32Array(W.length);
  for (let i = 0; i < W.length; i++) Wf[i] = W[i] * bn.t[Math.floor(i / per)];
  if (!convBias) return { W: Wf, bias: bn.b };
  return { W: Wf, bias: bn.b.map((b, o) => convBias[o] * bn.t[o] + b) };
}

/**
 * BN → the following pad-free conv or linear (a BN over its input channels): W'[o, c, ·] = W[o, c, ·]·t[c],
 * bias'[o] = bias[o] + Σ_{c,·} W[o, c, ·]·b[c]. `W` is (outC, inC/groups, taps) with `taps` weights per
 * (output, input channel) pair (k·k for a conv, 1 for a linear, the pooled positions for the 2021 fc1).
 * Exact only without padding (a padded border would see b instead of 0).
 */
export function fuseBNBeforeConv(
  W: Float32Array,
  bias: Float32Array | null,
  bn: BNAffine,
  l: { outC: number; inC: number; groups: number; taps: number },
): { W: Float32Array; bias: Float32Array } {
  const O = l.outC, cg = l.inC / l.groups, og = O / l.groups, kk = l.taps;
  const W2 = new Float32Array(W.length), b2 = new Float32Array(O);
  for (let o = 0; o < O; o++) {
    const g = Math.floor(o / og);
    let acc = bias ? bias[o] : 0;
    for (let ci = 0; ci < cg; ci++) {
      const ch = g * cg + ci, base = (o * cg + ci) * kk;
      for (let i = 0; i < kk; i++) {
        W2[base + i] = W[base + i] * bn.t[ch];
        acc += W[base + i] * bn.b[ch];
      }
    }
    b2[o] = acc;
  }
  return { W: W2, bias: b2 };
}

/**
 * Sum of BN-scaled conv branches, zero-padded to the largest kernel, and the summed BN bias.
 * Branch weights are (O, Cg, k, k) with a BN over O.
 */
export function mergeBranches(
  p: Params,
  name: string,
  ks: number[],
  O: number,
  Cg: number,
  eps: number,
): { K: Float32Array; Kmax: number; bias: Float32Array } {
  const Kmax = Math.max(...ks);
  const K = new Float32Array(O * Cg * Kmax * Kmax);
  const bias = new Float32Array(O);
  for (const k of ks) {
    const wt = p.get(key(name, `repconv${k}.conv.weight`));
    const { t, b } = p.bn(key(name, `repconv${k}.bn`), eps);
    const off = (Kmax - k) / 2;
    for (let o = 0; o < O; o++) {
      bias[o] += b[o];
      for (let c = 0; c < Cg; c++) {
        for (let y = 0; y < k; y++) {
          for (let x = 0; x < k; x++) {
            K[((o * Cg + c) * Kmax + y + off) * Kmax + x + off] += wt[((o * Cg + c) * k + y) * k + x] * t[o];
          }
        }
      }
    }
  }
  return { K, Kmax, bias };
}

/**
 * Add the FC equivalent of a (grouped) same-padded conv on one h×w partition into `fc`
 * (rows O·hw, cols Cg·hw, row-major). `K` is (O, Cg, Kmax, Kmax).
 */
export function addConvAsFC(
  fc: Float32Array,
  K: Float32Array,
  Kmax: number,
  O: number,
  Cg: number,
  h: number,
  w: number,
) {
  const hw = h * w, half = (Kmax - 1) / 2, cols = Cg * hw;
  for (let o = 0; o < O; o++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const row = (o * hw + y * w + x) * cols;
        for (let cl = 0; cl < Cg; cl++) {
          for (let y2 = Math.max(0, y - half); y2 <= Math.min(h - 1, y + half); y2++) {
            for (let x2 = Math.max(0, x - half); x2 <= Math.min(w - 1, x + half); x2++) {
              fc[row + cl * hw + y2 * w + x2] +=
                K[((o * Cg + cl) * Kmax + y2 - y + half) * Kmax + x2 - x + half];
            }
          }
        }
      }
    }
  }
}

type Out = Map<string, Tensor>;

function put(out: Out, k: string, shape: number[], data: Float32Array) {
  out.set(k, { dtype: "float32", shape, data });
}

function copy(out: Out, sd: StateDict, k: string) {
  const t = sd.get(k);
  if (t) out.set(k, t);
}

function foldRepMLPNetBlock(l: RepMLPNetBlockLayer, p: Params, sd: StateDict, out: Out) {
  const { name, S, h, w } = l;
  const hw = h * w;
  for (const s of ["gp.fc1.weight", "gp.fc1.bias", "gp.fc2.weight", "gp.fc2.bias"]) {
    copy(out, sd, key(name, s));
  }
  const W3 = p.get(key(name, "fc3.weight"));
  const { t, b } = p.bn(key(name, "fc3_bn"), l.eps);
  const Wd = new Float32Array(S * hw * hw);
  const bd = new Float32Array(S * hw);
  for (let row = 0; row < S * hw; row++) {
    const s = Math.floor(row / hw);
    bd[row] = b[s];
    for (let i = 0; i < hw; i++) Wd[row * hw + i] = W3[row * hw + i] * t[s];
  }
  if (l.ks.length) {
    // Depthwise over sharesets: O = S output "channels", one input channel each (Cg = 1).
    const m = mergeBranches(p, name, l.ks, S, 1, l.eps);
    addConvAsFC(Wd, m.K, m.Kmax, S, 1, h, w);
    for (let row = 0; row < S * hw; row++) bd[row] += m.bias[Math.floor(row / hw)];
  }
  put(out, key(name, "fc3.weight"), [S * hw, hw, 1, 1], Wd);
  put(out, key(name, "fc3.bias"), [S * hw], bd);
}

function foldRepMLP21(l: RepMLP21Layer, p: Params, out: Out) {
  const { name, inC: C, outC: O, h, w, g } = l;
  const hw = h * w, Cg = C / g, cols = Cg * hw;
  if (hasGP21(l)) {
    const Pn = (l.H / h) * (l.W / w), P = C * Pn, Pr = P / l.r;
    // fc1 sees the pooled map flattened channel-major: Pn positions per channel of the BN.
    const { W: W1d, bias: b1d } = fuseBNBeforeConv(
      p.get(key(name, "fc1_fc2.fc1.weight")),
      p.get(key(name, "fc1_fc2.fc1.bias")),
      p.bn(key(name, "avg.bn"), l.eps),
      { outC: Pr, inC: C, groups: 1, taps: Pn },
    );
    put(out, key(name, "fc1_fc2.fc1.weight"), [Pr, P], W1d);
    put(out, key(name, "fc1_fc2.fc1.bias"), [Pr], b1d);
    put(out, key(name, "fc1_fc2.fc2.weight"), [P, Pr], p.get(key(name, "fc1_fc2.fc2.weight")));
    put(out, key(name, "fc1_fc2.fc2.bias"), [P], p.get(key(name, "fc1_fc2.fc2.bias")));
  }
  const W3 = p.get(key(name, "fc3.weight"));
  const { t, b } = p.bn(key(name, "fc3_bn"), l.eps);
  const Wd = new Float32Array(O * hw * cols);
  const bd = new Float32Array(O * hw);
  for (let row = 0; row < O * hw; row++) {
    bd[row] = b[row];
    for (let i = 0; i < cols; i++) Wd[row * cols + i] = W3[row * cols + i] * t[row];
  }
  if (l.ks.length) {
    const m = mergeBranches(p, name, l.ks, O, Cg, l.eps);
    addConvAsFC(Wd, m.K, m.Kmax, O, Cg, h, w);
    for (let row = 0; row < O * hw; row++) bd[row] += m.bias[Math.floor(row / hw)];
  }
  put(out, key(name, "fc3.weight"), [O * hw, cols, 1, 1], Wd);
  put(out, key(name, "fc3.bias"), [O * hw], bd);
}

/** Layers that the fold rewrites (the unit of progress reporting). */
function isFolded(l: Layer): boolean {
  return l.kind === "repmlp21" || l.kind === "repmlpnet_block" || (l.kind === "convbn" && l.fuse) ||
    l.kind === "convscale";
}

type Progress = (label: string) => void;

function foldLayer(l: Layer, p: Params, sd: StateDict, out: Out, tick: Progress) {
  if (isFolded(l)) tick("name" in l ? l.name : l.kind);
  switch (l.kind) {
    case "seq":
      for (const c of l.layers) foldLayer(c, p, sd, out, tick);
      return;
    case "residual":
      foldLayer(l.body, p, sd, out, tick);
      if (l.shortcut) foldLayer(l.shortcut, p, sd, out, tick);
      return;
    case "convbn": {
      if (!l.fuse) break;
      const f = fuseBNIntoConv(p.get(key(l.name, "conv.weight")), p.bn(key(l.name, "bn"), l.eps));
      put(out, key(l.name, "conv.weight"), [l.outC, l.inC / l.groups, l.k, l.k], f.W);
      put(out, key(l.name, "conv.bias"), [l.outC], f.bias);
      return;
    }
    case "convscale": {
      // conv + bias, then x·s + b: the per-channel affine after a biased conv.
      const cn = key(l.name, "conv"), sn = key(l.name, "scale");
      const scale = { t: p.get(key(sn, "weight")), b: p.get(key(sn, "bias")) };
      const f = fuseBNIntoConv(p.get(key(cn, "weight")), scale, p.get(key(cn, "bias")));
      put(out, key(cn, "weight"), [l.outC, l.inC, l.k, l.k], f.W);
      put(out, key(cn, "bias"), [l.outC], f.bias);
      return;
    }
    case "repmlp21":
      return foldRepMLP21(l, p, out);
    case "repmlpnet_block":
      return foldRepMLPNetBlock(l, p, sd, out);
  }
  // Layers the official deploy keeps as they are.
  for (const s of paramSpecs(l, "train")) copy(out, sd, s.key);
}

/**
 * Fold a training-time state_dict into the deploy-mode one (official deploy keys, in
 * {@link paramSpecs} order). The input must already match `desc` in train mode (see detectMode).
 */
export function foldStateDict(
  desc: ModelDesc,
  train: StateDict,
  onProgress?: (done: number, total: number, layer: string) => void,
): StateDict {
  let total = 0, done = 0;
  walk(desc.root, (l) => total += isFolded(l) ? 1 : 0);
  const tmp: Out = new Map();
  foldLayer(desc.root, new Params(train), train, tmp, (label) => onProgress?.(++done, total, label));
  const out: StateDict = new Map();
  for (const s of paramSpecs(desc.root, "deploy")) {
    const t = tmp.get(s.key);
    if (t) out.set(s.key, t);
  }
  return out;
}
