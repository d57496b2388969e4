/**
 * Optimiser, schedules, losses and the training step on top of {@link TrainGraph}.
 * SGD with Nesterov momentum is written out (rather than tf.train.momentum) so its buffers can be
 * checkpointed and resumed exactly, and weight decay skips BN and biases.
 */
import * as tf from "@tensorflow/tfjs";
import type { StateDict } from "../../runtime/src/tensor.ts";
import type { BNUpdate, TrainGraph } from "./tfjs_graph.ts";

/** SGD + Nesterov momentum + decoupled-from-BN L2 weight decay. */
export class SGD {
  readonly momentum: number;
  readonly weightDecay: number;
  readonly #buf = new Map<string, tf.Variable>();

  constructor(momentum = 0.9, weightDecay = 5e-4) {
    this.momentum = momentum;
    this.weightDecay = weightDecay;
  }

  /** Apply gradients (keyed by variable name) to `vars`. */
  apply(vars: tf.Variable[], grads: tf.NamedTensorMap, lr: number): void {
    tf.tidy(() => {
      for (const v of vars) {
        const g0 = grads[v.name];
        if (!g0) continue;
        const decay = v.rank >= 2 ? this.weightDecay : 0;
        const g = decay ? tf.add(g0, tf.mul(v, decay)) : g0;
        let b = this.#buf.get(v.name);
        if (!b) {
          b = tf.variable(tf.zerosLike(v), false);
          this.#buf.set(v.name, b);
        }
        const nb = tf.add(tf.mul(b, this.momentum), g);
        b.assign(nb);
        v.assign(tf.sub(v, tf.mul(tf.add(g, tf.mul(nb, this.momentum)), lr)));
      }
    });
  }

  /** Momentum buffers keyed by `prefix + variable key` (for resume files). */
  async state(graph: TrainGraph, prefix = "opt."): Promise<StateDict> {
    const sd: StateDict = new Map();
    for (const [k, v] of graph.vars) {
      const b = this.#buf.get(v.name);
      if (b) sd.set(prefix + k, { dtype: "float32", shape: b.shape, data: new Float32Array(await b.data()) });
    }
    return sd;
  }

  /** Restore buffers written by {@link state}. */
  load(graph: TrainGraph, sd: StateDict, prefix = "opt."): void {
    for (const [k, v] of graph.vars) {
      const t = sd.get(prefix + k);
      if (t) this.#buf.set(v.name, tf.variable(tf.tensor(t.data as Float32Array, v.shape), false));
    }
  }

  dispose(): void {
    for (const b of this.#buf.values()) b.dispose();
    this.#buf.clear();
  }
}

/** Linear warm-up then cosine decay to 0, over `total` steps. */
export function cosineLR(step: number, total: number, base: number, warmup: number): number {
  if (step < warmup) return base * (step + 1) / warmup;
  const t = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return 0.5 * base * (1 + Math.cos(Math.PI * t));
}

/** Mean softmax cross-entropy with label smoothing; labels are class indices. */
export function crossEntropy(logits: tf.Tensor, labels: tf.Tensor1D, smoothing = 0): tf.Scalar {
  const K = logits.shape[1]!;
  const oh = tf.oneHot(labels, K).asType("float32");
  const target = smoothing ? tf.add(tf.mul(oh, 1 - smoothing), smoothing / K) : oh;
  const logp = tf.logSoftmax(logits);
  return tf.neg(tf.mean(tf.sum(tf.mul(target, logp), 1))) as tf.Scalar;
}

/**
 * AM-Softmax / CosFace head (Wang et al. 2018): logits = s·(cos θ_j − m·[j = y]) with cos θ the
 * cosine between the (already L2-normalised) embedding and the L2-normalised class weights.
 * The class weights are training-only (not part of the model checkpoint).
 */
export class AMSoftmax {
  readonly weight: tf.Variable;
  constructor(readonly classes: number, readonly dim: number, readonly s = 30, readonly m = 0.35, seed = 1) {
    this.weight = tf.variable(
      tf.randomNormal([classes, dim], 0, 1, "float32", seed),
      true,
      "amsoftmax.weight",
    );
  }
  /** Cosine logits (N, classes) before margin/scale. */
  cosines(emb: tf.Tensor): tf.Tensor2D {
    const wn = tf.div(this.weight, tf.maximum(tf.norm(this.weight, 2, 1, true), 1e-12));
    return tf.matMul(emb as tf.Tensor2D, tf.transpose(wn) as tf.Tensor2D);
  }
  /** Loss for L2-normalised embeddings. */
  loss(emb: tf.Tensor, labels: tf.Tensor1D): tf.Scalar {
    const cos = this.cosines(emb);
    const oh = tf.oneHot(labels, this.classes).asType("float32");
    const logits = tf.mul(tf.sub(cos, tf.mul(oh, this.m)), this.s);
    return crossEntropy(logits, labels, 0);
  }
}

/** What a training step needs to turn the model output into a loss. */
export type LossFn = (out: tf.Tensor, labels: tf.Tensor1D) => tf.Scalar;

/**
 * One SGD step on a batch: forward (training-mode BN), backward, update, BN running stats.
 * Returns the loss (awaited with data(), safe on webgpu) and top-1 hits when `out` are logits.
 */
export async function trainStep(
  graph: TrainGraph,
  opt: SGD,
  extraVars: tf.Variable[],
  x: Float32Array,
  shape: number[],
  y: Int32Array,
  loss: LossFn,
  lr: number,
): Promise<{ loss: number }> {
  const updates: BNUpdate[] = [];
  const vars = [...graph.trainable(), ...extraVars];
  const { value, grads } = tf.tidy(() => {
    const xt = tf.tensor(x, shape);
    const yt = tf.tensor1d(y, "int32");
    return tf.variableGrads(() => loss(graph.forward(xt, true, updates), yt), vars);
  });
  opt.apply(vars, grads, lr);
  graph.updateBN(updates);
  const l = (await value.data())[0];
  value.dispose();
  for (const g of Object.values(grads)) g.dispose();
  return { loss: l };
}

/** Eval-mode forward of a float batch, returned as a Float32Array (N × out). */
export async function predictBatch(
  graph: TrainGraph,
  x: Float32Array,
  shape: number[],
): Promise<Float32Array> {
  const out = tf.tidy(() => graph.forward(tf.tensor(x, shape), false));
  const d = new Float32Array(await out.data() as Float32Array);
  out.dispose();
  return d;
}
