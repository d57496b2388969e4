/**
 * tfjs training graph built from the model IR: one builder per layer kind, so any ModelDesc
 * trains. Variables carry the OFFICIAL state_dict keys and PyTorch layouts (OIHW convs, (out, in)
 * linears, (O·hw, C·hw/g, 1, 1) fc3), so a checkpoint is written without any re-layout and the
 * fold/convert path takes it unchanged. Activations are NHWC inside, NCHW at the boundary.
 *
 * BatchNorm follows PyTorch: training mode normalises with the biased batch variance and updates
 * running_mean/var with momentum 0.1 using the UNBIASED batch variance; eval mode uses running stats.
 */
import * as tf from "@tensorflow/tfjs";
import {
  hasGP21,
  key,
  type Layer,
  type ModelDesc,
  paramSpecs,
  type RepMLP21Layer,
  type RepMLPNetBlockLayer,
} from "../../runtime/src/arch/ir.ts";
import { ArchMismatchError, InvalidInputError } from "../../runtime/src/errors.ts";
import { rng } from "../../runtime/src/random.ts";
import { numel, type StateDict, toF32 } from "../../runtime/src/tensor.ts";
import { bnTrain, conv2d, convAsFC, gelu, groupedLinear, linear } from "./grad_ops.ts";

/** BN momentum (PyTorch default). */
export const BN_MOMENTUM = 0.1;

/** Batch statistics produced by one training-mode forward, applied by {@link TrainGraph.updateBN}. */
export interface BNUpdate {
  name: string;
  mean: tf.Tensor;
  /** Unbiased batch variance (PyTorch's running_var update uses n/(n−1)). */
  variance: tf.Tensor;
}

/** Forward context: training-mode BN collects its batch stats in `updates`. */
interface Ctx {
  training: boolean;
  updates: BNUpdate[];
}

function isBNKey(specKey: string, bnNames: Set<string>): boolean {
  return bnNames.has(specKey.slice(0, specKey.lastIndexOf(".")));
}

function bnNamesOf(layer: Layer): Set<string> {
  // A BN is any prefix that owns a running_mean entry.
  const s = new Set<string>();
  for (const p of paramSpecs(layer, "train")) {
    if (p.key.endsWith(".running_mean") || p.key === "running_mean") {
      s.add(p.key.slice(0, p.key.lastIndexOf(".")));
    }
  }
  return s;
}

/** The trainable model: tfjs variables under official keys + a forward built from the IR. */
export class TrainGraph {
  readonly desc: ModelDesc;
  /** Every float tensor of the training-time state_dict, by official key. */
  readonly vars = new Map<string, tf.Variable>();
  /** num_batches_tracked per BN prefix. */
  readonly nbt = new Map<string, bigint>();
  readonly #bn: Set<string>;

  /**
   * @param desc model description (training structure)
   * @param sd optional training-time state_dict to start from (e.g. resume); otherwise PyTorch's
   *   default init with a seeded generator
   */
  constructor(desc: ModelDesc, sd?: StateDict, seed = 0) {
    this.desc = desc;
    this.#bn = bnNamesOf(desc.root);
    const r = rng(seed);
    for (const s of paramSpecs(desc.root, "train")) {
      if (s.dtype === "int64") {
        const t = sd?.get(s.key);
        this.nbt.set(s.key.slice(0, s.key.lastIndexOf(".")), t ? BigInt(Number(t.data[0] ?? 0)) : 0n);
        continue;
      }
      let data: Float32Array;
      const given = sd?.get(s.key);
      if (sd && !given) throw new ArchMismatchError(`checkpoint lacks '${s.key}' needed by ${desc.arch}`);
      if (given) {
        if (numel(given.shape) !== numel(s.shape)) {
          throw new ArchMismatchError(`'${s.key}': expected shape [${s.shape}], got [${given.shape}]`);
        }
        data = new Float32Array(toF32(given).data);
      } else {
        data = new Float32Array(numel(s.shape));
        const leaf = s.key.slice(s.key.lastIndexOf(".") + 1);
        if (isBNKey(s.key, this.#bn)) {
          if (leaf === "weight" || leaf === "running_var") data.fill(1);
        } else {
          // kaiming_uniform(a=√5) for weights and the matching bias bound: U(±1/√fan_in).
          const wShape = leaf === "bias" ? this.#weightShapeFor(s.key) : s.shape;
          const fanIn = wShape.slice(1).reduce((a, b) => a * b, 1);
          const bound = 1 / Math.sqrt(fanIn);
          for (let i = 0; i < data.length; i++) data[i] = (2 * r() - 1) * bound;
        }
      }
      const trainable = !s.key.endsWith("running_mean") && !s.key.endsWith("running_var");
      this.vars.set(s.key, tf.variable(tf.tensor(data, s.shape), trainable, `v${this.vars.size}_${s.key}`));
    }
  }

  #weightShapeFor(biasKey: string): number[] {
    const wk = biasKey.slice(0, -"bias".length) + "weight";
    const spec = paramSpecs(this.desc.root, "train").find((p) => p.key === wk);
    return spec ? spec.shape : [1, 1];
  }

  /** Trainable variables (weights, biases, BN affine). */
  trainable(): tf.Variable[] {
    return [...this.vars.values()].filter((v) => v.trainable);
  }

  #v(k: string): tf.Tensor {
    const v = this.vars.get(k);
    if (!v) throw new ArchMismatchError(`no variable '${k}'`);
    return v;
  }

  /**
   * Batch norm over every axis but the channel one. `x` has channels on axis `chAxis`;
   * params are broadcast to that axis.
   */
  #bnApply(ctx: Ctx, name: string, x: tf.Tensor, chAxis: number, eps: number): tf.Tensor {
    const C = x.shape[chAxis];
    const bshape = x.shape.map((_, i) => (i === chAxis ? C : 1));
    const gamma = tf.reshape(this.#v(key(name, "weight")), bshape);
    const beta = tf.reshape(this.#v(key(name, "bias")), bshape);
    if (!ctx.training) {
      const rm = tf.reshape(this.#v(key(name, "running_mean")), bshape);
      const rv = tf.reshape(this.#v(key(name, "running_var")), bshape);
      return tf.add(tf.mul(tf.sub(x, rm), tf.mul(gamma, tf.rsqrt(tf.add(rv, eps)))), beta);
    }
    const axes = x.shape.map((_, i) => i).filter((i) => i !== chAxis);
    const n = axes.reduce((a, i) => a * x.shape[i], 1);
    const { y, mean, variance } = bnTrain(x, gamma, beta, axes, eps);
    ctx.updates.push({
      name,
      mean: tf.keep(tf.reshape(mean, [C])),
      variance: tf.keep(tf.reshape(tf.mul(variance, n / Math.max(n - 1, 1)), [C])),
    });
    return y;
  }

  #conv(x: tf.Tensor4D, wKey: string, l: { stride: number; pad: number; groups: number }): tf.Tensor4D {
    return conv2d(x, this.#v(wKey), l);
  }

  #repmlp21(ctx: Ctx, l: RepMLP21Layer, x: tf.Tensor4D): tf.Tensor4D {
    const [N, H, W, C] = x.shape;
    if (C !== l.inC || H !== l.H || W !== l.W) {
      throw new InvalidInputError(
        `${l.name}: expected (N, ${l.inC}, ${l.H}, ${l.W}), got (N, ${C}, ${H}, ${W})`,
      );
    }
    const { h, w, g, name } = l;
    const O = l.outC, hw = h * w, hp = H / h, wp = W / w, Pn = hp * wp, R = N * Pn;
    let xin: tf.Tensor = x;
    if (hasGP21(l)) {
      // Global perceptron: BN(avgpool_(h,w)) → flatten as c·Pn + ip·wp + jp → fc1 → relu → fc2.
      const pooled = tf.mean(tf.reshape(x, [N, hp, h, wp, w, C]), [2, 4]); // (N, hp, wp, C)
      const v = this.#bnApply(ctx, key(name, "avg.bn"), pooled, 3, l.eps);
      const flat = tf.reshape(tf.transpose(v, [0, 3, 1, 2]), [N, C * Pn]) as tf.Tensor2D;
      const a = tf.relu(
        linear(flat, this.#v(key(name, "fc1_fc2.fc1.weight")), this.#v(key(name, "fc1_fc2.fc1.bias"))),
      ) as tf.Tensor2D;
      const gp = linear(a, this.#v(key(name, "fc1_fc2.fc2.weight")), this.#v(key(name, "fc1_fc2.fc2.bias")));
      const gpN = tf.reshape(tf.transpose(tf.reshape(gp, [N, C, hp, wp]), [0, 2, 3, 1]), [
        N,
        hp,
        1,
        wp,
        1,
        C,
      ]);
      xin = tf.reshape(tf.add(tf.reshape(x, [N, hp, h, wp, w, C]), gpN), [N, H, W, C]);
    }
    // Partitions (R, h, w, C), R ordered (n, ip, jp) as the official reshape/permute.
    const part = tf.reshape(tf.transpose(tf.reshape(xin, [N * hp, h, wp, w, C]), [0, 2, 1, 3, 4]), [
      R,
      h,
      w,
      C,
    ]);
    // Partition perceptron: grouped FC over rows (c, y, x); groups on the leading axis.
    const Cg = C / g;
    const rows = tf.reshape(tf.transpose(tf.reshape(part, [R, hw, g, Cg]), [2, 0, 3, 1]), [g, R, Cg * hw]);
    const y3 = groupedLinear(rows as tf.Tensor3D, this.#v(key(name, "fc3.weight")), g); // (g, R, Og·hw)
    const fc = g === 1 ? tf.reshape(y3, [R, O * hw]) : tf.reshape(tf.transpose(y3, [1, 0, 2]), [R, O * hw]);
    let F = this.#bnApply(ctx, key(name, "fc3_bn"), fc, 1, l.eps);
    // Local perceptron: K×K grouped convs on the partitions, each + BN over O. Computed as the
    // conv's equivalent FC on the same rows (the paper's conv→FC identity): one matMul per group
    // instead of wasm's slow grouped-conv backward; each branch keeps its own BN batch stats.
    for (const k of l.ks) {
      const wfc = convAsFC(this.#v(key(name, `repconv${k}.conv.weight`)), h, w);
      const y = groupedLinear(rows as tf.Tensor3D, wfc, g);
      const yr = g === 1 ? tf.reshape(y, [R, O, hw]) : tf.reshape(tf.transpose(y, [1, 0, 2]), [R, O, hw]);
      F = tf.add(F, tf.reshape(this.#bnApply(ctx, key(name, `repconv${k}.bn`), yr, 1, l.eps), [R, O * hw]));
    }
    // Back to NHWC: (N·hp, wp, O, h, w) → (N·hp, h, wp, w, O).
    return tf.reshape(tf.transpose(tf.reshape(F, [N * hp, wp, O, h, w]), [0, 3, 1, 4, 2]), [N, H, W, O]);
  }

  #repmlpnetBlock(ctx: Ctx, l: RepMLPNetBlockLayer, x: tf.Tensor4D): tf.Tensor4D {
    const [N, H, W, C] = x.shape;
    const { h, w, S, name } = l;
    if (C !== l.C) throw new InvalidInputError(`${l.name}: expected ${l.C} channels, got ${C}`);
    if (H % h !== 0 || W % w !== 0) {
      throw new InvalidInputError(`${l.name}: input ${H}×${W} is not divisible into ${h}×${w} partitions`);
    }
    const hw = h * w, hp = H / h, wp = W / w, G = C / S, R = N * hp * wp * G;
    // Global perceptron (SE-like gate).
    const pooled = tf.mean(x, [1, 2]) as tf.Tensor2D;
    const w1 = tf.reshape(this.#v(key(name, "gp.fc1.weight")), [C / l.r, C]) as tf.Tensor2D;
    const w2 = tf.reshape(this.#v(key(name, "gp.fc2.weight")), [C, C / l.r]) as tf.Tensor2D;
    const g1 = tf.relu(linear(pooled, w1, this.#v(key(name, "gp.fc1.bias")))) as tf.Tensor2D;
    const gate = tf.reshape(tf.sigmoid(linear(g1, w2, this.#v(key(name, "gp.fc2.bias")))), [N, 1, 1, C]);
    // Rows (S, R, hw) with R = (n, ip, jp, j): per shareset s, channel c = j·S + s.
    const rows = tf.reshape(
      tf.transpose(tf.reshape(x, [N * hp, h, wp, w, G, S]), [5, 0, 2, 4, 1, 3]),
      [S, R, hw],
    );
    const per = groupedLinear(rows as tf.Tensor3D, this.#v(key(name, "fc3.weight")), S);
    let F = this.#bnApply(ctx, key(name, "fc3_bn"), per, 0, l.eps); // (S, R, hw)
    for (const k of l.ks) {
      // Depthwise conv over sharesets = per-shareset (hw × hw) FC on the same rows.
      const wfc = convAsFC(this.#v(key(name, `repconv${k}.conv.weight`)), h, w);
      F = tf.add(
        F,
        this.#bnApply(ctx, key(name, `repconv${k}.bn`), groupedLinear(rows as tf.Tensor3D, wfc, S), 0, l.eps),
      );
    }
    // Official re-assembly: per sample, row q is read back as (j', ip', jp'), q = (j'·hp + ip')·wp + jp'.
    const out = tf.reshape(
      tf.transpose(tf.reshape(F, [S, N, G, hp, wp, h, w]), [1, 3, 5, 4, 6, 2, 0]),
      [N, H, W, C],
    );
    return tf.mul(out, gate) as tf.Tensor4D;
  }

  #run(ctx: Ctx, l: Layer, x: tf.Tensor): tf.Tensor {
    switch (l.kind) {
      case "conv": {
        let y: tf.Tensor = this.#conv(x as tf.Tensor4D, key(l.name, "weight"), l);
        if (l.bias) y = tf.add(y, this.#v(key(l.name, "bias")));
        return y;
      }
      case "bn":
        return this.#bnApply(ctx, l.name, x, x.rank - 1, l.eps);
      case "convbn": {
        const y = this.#conv(x as tf.Tensor4D, key(l.name, "conv.weight"), l);
        const z = this.#bnApply(ctx, key(l.name, "bn"), y, 3, l.eps);
        return l.act === "relu" ? tf.relu(z) : z;
      }
      case "linear": {
        if (x.rank !== 2 || x.shape[1] !== l.inF) {
          throw new InvalidInputError(`${l.name}: expected (N, ${l.inF}), got (${x.shape.join(", ")})`);
        }
        const b = l.bias ? this.#v(key(l.name, "bias")) : null;
        return linear(
          x as tf.Tensor2D,
          this.#v(key(l.name, "weight")) as tf.Tensor2D,
          b as tf.Tensor1D | null,
        );
      }
      case "act":
        return l.fn === "relu" ? tf.relu(x) : l.fn === "sigmoid" ? tf.sigmoid(x) : gelu(x);
      case "seq":
        return l.layers.reduce((acc, c) => this.#run(ctx, c, acc), x);
      case "residual": {
        const y = this.#run(ctx, l.body, x);
        const s = l.shortcut ? this.#run(ctx, l.shortcut, x) : x;
        const z = tf.add(y, s);
        return l.post === "relu" ? tf.relu(z) : z;
      }
      case "gap":
        return x.rank === 4 ? tf.mean(x, [1, 2]) : x;
      case "flatten":
        // Official flatten of NCHW: order (c, y, x).
        return x.rank === 4 ? tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [x.shape[0], -1]) : x;
      case "l2norm": {
        const n = tf.maximum(tf.sqrt(tf.sum(tf.square(x), 1, true)), 1e-12);
        return tf.div(x, n);
      }
      case "repmlp21":
        return this.#repmlp21(ctx, l, x as tf.Tensor4D);
      case "repmlpnet_block":
        return this.#repmlpnetBlock(ctx, l, x as tf.Tensor4D);
      case "convscale": {
        const y = tf.add(
          this.#conv(x as tf.Tensor4D, key(l.name, "conv.weight"), { ...l, groups: 1 }),
          this.#v(key(l.name, "conv.bias")),
        );
        const z = tf.add(tf.mul(y, this.#v(key(l.name, "scale.weight"))), this.#v(key(l.name, "scale.bias")));
        return l.act === "relu" ? tf.relu(z) : z;
      }
      case "maxpool":
        return tf.maxPool(x as tf.Tensor4D, l.k, l.stride, "valid");
      case "avgpool":
        return tf.avgPool(x as tf.Tensor4D, l.k, l.stride, "valid");
      case "zeropad":
        return tf.pad(x, [[0, 0], [0, l.h], [0, l.w], [0, l.c]]); // NHWC
    }
  }

  /**
   * Forward an NCHW batch. `training` = batch-stat BN (its stats are appended to `updates`,
   * kept outside tidy scopes: pass them to {@link updateBN} or dispose them). Output is NCHW
   * for 4-D results, (N, F) otherwise.
   */
  forward(x: tf.Tensor, training: boolean, updates: BNUpdate[] = []): tf.Tensor {
    const [C, H, W] = this.desc.input;
    if (
      x.rank !== 4 || x.shape[1] !== C || (H !== null && x.shape[2] !== H) || (W !== null && x.shape[3] !== W)
    ) {
      throw new InvalidInputError(
        `${this.desc.arch}: expected input (N, ${C}, ${H ?? "H"}, ${W ?? "W"}), got (${x.shape.join(", ")})`,
      );
    }
    const nhwc = C === 1
      ? tf.reshape(x, [x.shape[0], x.shape[2]!, x.shape[3]!, 1])
      : tf.transpose(x, [0, 2, 3, 1]);
    const y = this.#run({ training, updates }, this.desc.root, nhwc);
    return y.rank === 4 ? tf.transpose(y, [0, 3, 1, 2]) : y;
  }

  /** Apply PyTorch's running-stat update for the collected batch stats, then dispose them. */
  updateBN(updates: BNUpdate[]): void {
    tf.tidy(() => {
      for (const u of updates) {
        const rm = this.vars.get(key(u.name, "running_mean"))!,
          rv = this.vars.get(key(u.name, "running_var"))!;
        rm.assign(tf.add(tf.mul(rm, 1 - BN_MOMENTUM), tf.mul(u.mean, BN_MOMENTUM)));
        rv.assign(tf.add(tf.mul(rv, 1 - BN_MOMENTUM), tf.mul(u.variance, BN_MOMENTUM)));
        this.nbt.set(u.name, (this.nbt.get(u.name) ?? 0n) + 1n);
      }
    });
    for (const u of updates) {
      u.mean.dispose();
      u.variance.dispose();
    }
  }

  /** Training-time state_dict with official keys, in PyTorch registration order. */
  async stateDict(): Promise<StateDict> {
    const sd: StateDict = new Map();
    for (const s of paramSpecs(this.desc.root, "train")) {
      if (s.dtype === "int64") {
        const n = this.nbt.get(s.key.slice(0, s.key.lastIndexOf("."))) ?? 0n;
        sd.set(s.key, { dtype: "int64", shape: [], data: BigInt64Array.of(n) });
      } else {
        const data = new Float32Array(await this.#v(s.key).data() as Float32Array);
        sd.set(s.key, { dtype: "float32", shape: s.shape, data });
      }
    }
    return sd;
  }

  /** Free every variable. */
  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}
