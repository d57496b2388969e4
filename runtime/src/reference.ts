/**
 * Pure-TypeScript reference forward (the oracle of every test, and `--backend reference`).
 * Follows the official PyTorch forwards line by line, including RepMLPNet's reshape order.
 */
import { InvalidInputError } from "./errors.ts";
import {
  hasGP21,
  key,
  type Layer,
  type Mode,
  type ModelDesc,
  type RepMLP21Layer,
  type RepMLPNetBlockLayer,
} from "./arch/ir.ts";
import { acceptsAnyHW, checkInputHW } from "./arch/shapes.ts";
import { activate, channelAffine, conv2d, linear, pool2d, zeroPadEnd } from "./kernels.ts";
import { Params } from "./params.ts";
import { type F32, f32, type StateDict } from "./tensor.ts";

/**
 * Partition rows: P = x.reshape(N,C,hp,h,wp,w).permute(0,2,4,1,3,5) viewed as rows of `rowLen`
 * elements. Returns the (N·hp·wp·C·h·w) buffer in that order.
 */
function toPartitions(x: F32, h: number, w: number): Float32Array {
  const [N, C, H, W] = x.shape;
  const hp = H / h, wp = W / w;
  const out = new Float32Array(x.data.length);
  let o = 0;
  for (let n = 0; n < N; n++) {
    for (let ip = 0; ip < hp; ip++) {
      for (let jp = 0; jp < wp; jp++) {
        for (let c = 0; c < C; c++) {
          for (let y = 0; y < h; y++) {
            const src = ((n * C + c) * H + ip * h + y) * W + jp * w;
            for (let xx = 0; xx < w; xx++) out[o++] = x.data[src + xx];
          }
        }
      }
    }
  }
  return out;
}

function checkPartition(x: F32, h: number, w: number, what: string) {
  const [, , H, W] = x.shape;
  if (H % h !== 0 || W % w !== 0) {
    throw new InvalidInputError(`${what}: input ${H}×${W} is not divisible into ${h}×${w} partitions`);
  }
}

/** Grouped FC over rows: rows (R, g·inLen) → (R, g·outLen) with weight (g·outLen, inLen). */
function groupedFC(
  rows: Float32Array,
  R: number,
  g: number,
  inLen: number,
  outLen: number,
  wt: Float32Array,
  bias: Float32Array | null,
): Float32Array {
  const out = new Float32Array(R * g * outLen);
  for (let r = 0; r < R; r++) {
    for (let gi = 0; gi < g; gi++) {
      const xi = (r * g + gi) * inLen;
      for (let o = 0; o < outLen; o++) {
        const row = gi * outLen + o;
        let s = bias ? bias[row] : 0;
        const wr = row * inLen;
        for (let i = 0; i < inLen; i++) s += wt[wr + i] * rows[xi + i];
        out[(r * g + gi) * outLen + o] = s;
      }
    }
  }
  return out;
}

/** Local perceptron: Σ_k BN_k(conv_k(rows as (R, Cin, h, w))) added into F (R, Cout, h, w). */
function addLocal(
  p: Params,
  name: string,
  ks: number[],
  rows: Float32Array,
  R: number,
  cin: number,
  cout: number,
  h: number,
  w: number,
  groups: number,
  eps: number,
  F: Float32Array,
) {
  const xr = f32([R, cin, h, w], rows);
  for (const k of ks) {
    const y = conv2d(xr, p.get(key(name, `repconv${k}.conv.weight`)), null, {
      outC: cout,
      k,
      stride: 1,
      pad: Math.floor(k / 2),
      groups,
    });
    const { t, b } = p.bn(key(name, `repconv${k}.bn`), eps);
    const z = channelAffine(y, t, b).data;
    for (let i = 0; i < F.length; i++) F[i] += z[i];
  }
}

function repmlpnetBlock(l: RepMLPNetBlockLayer, p: Params, x: F32, mode: Mode): F32 {
  checkPartition(x, l.h, l.w, l.name || "RepMLPBlock");
  const [N, C, H, W] = x.shape;
  const { h, w, S, name } = l;
  const hw = h * w, hp = H / h, wp = W / w, G = C / S;
  // Global perceptron (SE-like): sigmoid(fc2(relu(fc1(mean(x))))).
  const pooled = new Float32Array(N * C);
  for (let i = 0; i < N * C; i++) {
    let s = 0;
    for (let j = 0; j < H * W; j++) s += x.data[i * H * W + j];
    pooled[i] = s / (H * W);
  }
  const Cr = C / l.r;
  const g1 = linear(pooled, N, C, p.get(key(name, "gp.fc1.weight")), p.get(key(name, "gp.fc1.bias")), Cr);
  for (let i = 0; i < g1.length; i++) g1[i] = Math.max(0, g1[i]);
  const g2 = linear(g1, N, Cr, p.get(key(name, "gp.fc2.weight")), p.get(key(name, "gp.fc2.bias")), C);
  for (let i = 0; i < g2.length; i++) g2[i] = 1 / (1 + Math.exp(-g2[i]));

  // Rows of S·hw: (n, ip, jp, j) each holding [s][y][x].
  const rows = toPartitions(x, h, w);
  const R = N * hp * wp * G;
  let F: Float32Array;
  if (mode === "deploy") {
    F = groupedFC(rows, R, S, hw, hw, p.get(key(name, "fc3.weight")), p.get(key(name, "fc3.bias")));
  } else {
    F = groupedFC(rows, R, S, hw, hw, p.get(key(name, "fc3.weight")), null);
    const { t, b } = p.bn(key(name, "fc3_bn"), l.eps);
    for (let r = 0; r < R; r++) {
      for (let s = 0; s < S; s++) {
        const o = (r * S + s) * hw;
        for (let i = 0; i < hw; i++) F[o + i] = F[o + i] * t[s] + b[s];
      }
    }
    addLocal(p, name, l.ks, rows, R, S, S, h, w, S, l.eps, F);
  }
  // Official re-assembly: F.reshape(-1,hp,wp,S,h,w).permute(0,3,1,4,2,5).reshape(N,C,H,W).
  // Row q of a sample is read back as (j', ip', jp') with q = (j'·hp + ip')·wp + jp'.
  const out = f32([N, C, H, W]);
  const per = hp * wp * G;
  for (let n = 0; n < N; n++) {
    for (let q = 0; q < per; q++) {
      const jq = Math.floor(q / (hp * wp)), ip = Math.floor(q / wp) % hp, jp = q % wp;
      for (let s = 0; s < S; s++) {
        const c = jq * S + s;
        const gate = g2[n * C + c];
        const src = ((n * per + q) * S + s) * hw;
        for (let y = 0; y < h; y++) {
          const dst = ((n * C + c) * H + ip * h + y) * W + jp * w;
          for (let xx = 0; xx < w; xx++) out.data[dst + xx] = F[src + y * w + xx] * gate;
        }
      }
    }
  }
  return out;
}

function repmlp21(l: RepMLP21Layer, p: Params, x: F32, mode: Mode): F32 {
  const [N, C, H, W] = x.shape;
  if (C !== l.inC || H !== l.H || W !== l.W) {
    throw new InvalidInputError(
      `${l.name || "RepMLP"}: expected input (N, ${l.inC}, ${l.H}, ${l.W}), got (${x.shape.join(", ")})`,
    );
  }
  const { h, w, name, g } = l;
  const O = l.outC, hw = h * w, hp = H / h, wp = W / w, Pn = hp * wp;
  let xin = x;
  if (hasGP21(l)) {
    // v = BN(AvgPool_(h,w)(x)) flattened as c·hp·wp + ip·wp + jp → fc1 → relu → fc2.
    const v = new Float32Array(N * C * Pn);
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        for (let ip = 0; ip < hp; ip++) {
          for (let jp = 0; jp < wp; jp++) {
            let s = 0;
            for (let y = 0; y < h; y++) {
              const r = ((n * C + c) * H + ip * h + y) * W + jp * w;
              for (let xx = 0; xx < w; xx++) s += x.data[r + xx];
            }
            v[(n * C + c) * Pn + ip * wp + jp] = s / hw;
          }
        }
      }
    }
    if (mode === "train") {
      const { t, b } = p.bn(key(name, "avg.bn"), l.eps);
      for (let n = 0; n < N; n++) {
        for (let c = 0; c < C; c++) {
          for (let i = 0; i < Pn; i++) {
            const j = (n * C + c) * Pn + i;
            v[j] = v[j] * t[c] + b[c];
          }
        }
      }
    }
    const P = C * Pn, Pr = P / l.r;
    const a = linear(
      v,
      N,
      P,
      p.get(key(name, "fc1_fc2.fc1.weight")),
      p.get(key(name, "fc1_fc2.fc1.bias")),
      Pr,
    );
    for (let i = 0; i < a.length; i++) a[i] = Math.max(0, a[i]);
    const gp = linear(
      a,
      N,
      Pr,
      p.get(key(name, "fc1_fc2.fc2.weight")),
      p.get(key(name, "fc1_fc2.fc2.bias")),
      P,
    );
    // Additive: one scalar per (channel, partition).
    xin = f32(x.shape);
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        for (let yy = 0; yy < H; yy++) {
          const r = ((n * C + c) * H + yy) * W;
          const ip = Math.floor(yy / h);
          for (let xx = 0; xx < W; xx++) {
            xin.data[r + xx] = x.data[r + xx] + gp[(n * C + c) * Pn + ip * wp + Math.floor(xx / w)];
          }
        }
      }
    }
  }
  const rows = toPartitions(xin, h, w); // (N·hp·wp, C, h, w)
  const R = N * Pn;
  const inLen = (C * hw) / g, outLen = (O * hw) / g;
  let F: Float32Array;
  if (mode === "deploy") {
    F = groupedFC(rows, R, g, inLen, outLen, p.get(key(name, "fc3.weight")), p.get(key(name, "fc3.bias")));
  } else {
    F = groupedFC(rows, R, g, inLen, outLen, p.get(key(name, "fc3.weight")), null);
    const { t, b } = p.bn(key(name, "fc3_bn"), l.eps); // BN1d over O·hw neurons
    const M = O * hw;
    for (let r = 0; r < R; r++) for (let i = 0; i < M; i++) F[r * M + i] = F[r * M + i] * t[i] + b[i];
    addLocal(p, name, l.ks, rows, R, C, O, h, w, g, l.eps, F);
  }
  const out = f32([N, O, H, W]);
  for (let n = 0; n < N; n++) {
    for (let ip = 0; ip < hp; ip++) {
      for (let jp = 0; jp < wp; jp++) {
        const src0 = ((n * hp + ip) * wp + jp) * O * hw;
        for (let o = 0; o < O; o++) {
          for (let y = 0; y < h; y++) {
            const dst = ((n * O + o) * H + ip * h + y) * W + jp * w;
            const src = src0 + o * hw + y * w;
            for (let xx = 0; xx < w; xx++) out.data[dst + xx] = F[src + xx];
          }
        }
      }
    }
  }
  return out;
}

function run(l: Layer, p: Params, x: F32, mode: Mode): F32 {
  switch (l.kind) {
    case "conv":
      return conv2d(x, p.get(key(l.name, "weight")), l.bias ? p.get(key(l.name, "bias")) : null, l);
    case "bn": {
      const { t, b } = p.bn(l.name, l.eps);
      return channelAffine(x, t, b);
    }
    case "convbn": {
      const cn = key(l.name, "conv");
      let y: F32;
      if (mode === "deploy" && l.fuse) {
        y = conv2d(x, p.get(key(cn, "weight")), p.get(key(cn, "bias")), l);
      } else {
        y = conv2d(x, p.get(key(cn, "weight")), null, l);
        const { t, b } = p.bn(key(l.name, "bn"), l.eps);
        y = channelAffine(y, t, b);
      }
      return l.act === "relu" ? activate(y, "relu") : y;
    }
    case "linear": {
      const [N, F] = x.shape;
      if (F !== l.inF) throw new InvalidInputError(`${l.name}: expected ${l.inF} features, got ${F}`);
      const b = l.bias ? p.get(key(l.name, "bias")) : null;
      return f32([N, l.outF], linear(x.data, N, F, p.get(key(l.name, "weight")), b, l.outF));
    }
    case "act":
      return activate(x, l.fn);
    case "seq":
      return l.layers.reduce((acc, c) => run(c, p, acc, mode), x);
    case "residual": {
      const y = run(l.body, p, x, mode);
      const s = l.shortcut ? run(l.shortcut, p, x, mode) : x;
      if (y.data.length !== s.data.length) {
        throw new InvalidInputError("residual: body/shortcut shapes differ");
      }
      const z = f32(y.shape);
      for (let i = 0; i < z.data.length; i++) {
        const v = y.data[i] + s.data[i];
        z.data[i] = l.post === "relu" && v < 0 ? 0 : v;
      }
      return z;
    }
    case "gap": {
      const [N, C] = x.shape;
      const inner = x.data.length / (N * C);
      const y = f32([N, C]);
      for (let i = 0; i < N * C; i++) {
        let s = 0;
        for (let j = 0; j < inner; j++) s += x.data[i * inner + j];
        y.data[i] = s / inner;
      }
      return y;
    }
    case "flatten":
      return f32([x.shape[0], x.data.length / x.shape[0]], x.data);
    case "l2norm": {
      const [N, F] = x.shape;
      const y = f32([N, F]);
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let i = 0; i < F; i++) s += x.data[n * F + i] ** 2;
        const inv = 1 / Math.max(Math.sqrt(s), 1e-12);
        for (let i = 0; i < F; i++) y.data[n * F + i] = x.data[n * F + i] * inv;
      }
      return y;
    }
    case "repmlp21":
      return repmlp21(l, p, x, mode);
    case "repmlpnet_block":
      return repmlpnetBlock(l, p, x, mode);
    case "convscale": {
      const cn = key(l.name, "conv");
      let y = conv2d(x, p.get(key(cn, "weight")), p.get(key(cn, "bias")), { ...l, groups: 1 });
      if (mode === "train") {
        const sn = key(l.name, "scale");
        y = channelAffine(y, p.get(key(sn, "weight")), p.get(key(sn, "bias")));
      }
      return l.act === "relu" ? activate(y, "relu") : y;
    }
    case "maxpool":
      return pool2d(x, l.k, l.stride, "max");
    case "avgpool":
      return pool2d(x, l.k, l.stride, "avg");
    case "zeropad":
      return zeroPadEnd(x, l.c, l.h, l.w);
  }
}

/**
 * Check an NCHW input against the description: its fixed shape, or — for models that take any
 * size — every block's partition (InputSizeError naming the stage and partition, see arch/shapes.ts).
 */
export function checkInput(desc: ModelDesc, x: F32): void {
  const [C, H, W] = desc.input;
  const s = x.shape;
  const any = acceptsAnyHW(desc);
  const hw = any ? "H, W" : `${H}, ${W}`;
  const bad = () =>
    new InvalidInputError(`${desc.arch}: expected input (N, ${C}, ${hw}), got (${s.join(", ")})`);
  if (s.length !== 4 || s[1] !== C) throw bad();
  // Name the layer that rejects the size (fixed-size models too: their 2021 RepMLPs fix H×W).
  if (any || s[2] !== H || s[3] !== W) checkInputHW(desc, s[2], s[3]);
  if (!any && (s[2] !== H || s[3] !== W)) throw bad();
  for (let i = 0; i < x.data.length; i++) {
    if (!Number.isFinite(x.data[i])) {
      throw new InvalidInputError(`input has a non-finite value at index ${i}`);
    }
  }
}

/** Run `desc` on NCHW float32 `x` with the given state_dict in training-structure or deploy mode (eval BN). */
export function forward(desc: ModelDesc, sd: StateDict, x: F32, mode: Mode): F32 {
  checkInput(desc, x);
  return run(desc.root, new Params(sd), x, mode);
}
