/**
 * The tfjs training graph against the pure-TS reference forward (train structure, eval BN) on
 * random weights, the hand-written gradients against tfjs' own, and the BN running-stat update.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { buildModel, type ModelDesc, paramSpecs } from "../../runtime/src/arch/mod.ts";
import { forward } from "../../runtime/src/reference.ts";
import { rng } from "../../runtime/src/random.ts";
import { f32, maxAbsDiff, numel, type StateDict } from "../../runtime/src/tensor.ts";
import { initBackend } from "../train/tfjs_backend.ts";
import { TrainGraph } from "../train/tfjs_graph.ts";

/** Random train-mode state_dict with non-trivial BN statistics. */
function randomSD(desc: ModelDesc, seed: number): StateDict {
  const r = rng(seed);
  const u = (lo: number, hi: number) => lo + (hi - lo) * r();
  const sd: StateDict = new Map();
  const specs = paramSpecs(desc.root, "train");
  const bn = new Set(specs.filter((s) => s.key.endsWith("running_mean")).map((s) => s.key.slice(0, -13)));
  for (const s of specs) {
    if (s.dtype === "int64") {
      sd.set(s.key, { dtype: "int64", shape: [], data: new BigInt64Array(1) });
      continue;
    }
    const d = new Float32Array(numel(s.shape));
    const leaf = s.key.slice(s.key.lastIndexOf(".") + 1);
    const isBN = bn.has(s.key.slice(0, s.key.lastIndexOf(".")));
    const a = 1 / Math.sqrt(Math.max(1, s.shape.slice(1).reduce((x, y) => x * y, 1)));
    for (let i = 0; i < d.length; i++) {
      d[i] = !isBN
        ? u(-a, a) * 2
        : leaf === "running_mean"
        ? u(-0.5, 0.5)
        : leaf === "running_var"
        ? u(0.5, 2)
        : leaf === "weight"
        ? u(0.5, 1.5)
        : u(-0.5, 0.5);
    }
    sd.set(s.key, { dtype: "float32", shape: s.shape, data: d });
  }
  return sd;
}

function randInput(shape: number[], seed: number) {
  const r = rng(seed);
  return f32(shape, Float32Array.from({ length: numel(shape) }, () => 2 * r() - 1));
}

const CASES: { name: string; arch: string; kwargs: Record<string, unknown>; x: number[] }[] = [
  {
    name: "repmlp21 GP + k1357 g4",
    arch: "RepMLP",
    kwargs: {
      in_channels: 16,
      out_channels: 8,
      H: 8,
      W: 8,
      h: 4,
      w: 4,
      reparam_conv_k: [1, 3, 5, 7],
      fc1_fc2_reduction: 4,
      fc3_groups: 4,
    },
    x: [2, 16, 8, 8],
  },
  {
    name: "repmlp21 no GP, g1",
    arch: "RepMLP",
    kwargs: { in_channels: 8, out_channels: 8, H: 4, W: 4, h: 4, w: 4, reparam_conv_k: [3], fc3_groups: 1 },
    x: [3, 8, 4, 4],
  },
  {
    name: "repmlpnet_block S4 2x2 partitions",
    arch: "RepMLPBlock",
    kwargs: { in_channels: 16, out_channels: 16, h: 4, w: 4, reparam_conv_k: [1, 3], num_sharesets: 4 },
    x: [2, 16, 8, 8],
  },
  {
    name: "RepMLPNetUnit (bn, gelu, residual)",
    arch: "RepMLPNetUnit",
    kwargs: { channels: 8, h: 2, w: 2, reparam_conv_k: [1, 3], globalperceptron_reduce: 2, num_sharesets: 2 },
    x: [2, 8, 4, 4],
  },
  {
    name: "RepMLPBottleneckBlock (convbn, shortcut)",
    arch: "RepMLPBottleneckBlock",
    kwargs: {
      in_channels: 16,
      mid_channels: 8,
      out_channels: 12,
      r: 2,
      H: 4,
      W: 4,
      h: 2,
      w: 2,
      reparam_conv_k: [1, 3],
      fc3_groups: 2,
    },
    x: [2, 16, 4, 4],
  },
  {
    name: "RepMLPNet tiny (strided embeds, head)",
    arch: "RepMLPNet",
    kwargs: {
      in_channels: 3,
      num_class: 5,
      patch_size: [2, 2],
      num_blocks: [1, 1],
      channels: [8, 16],
      hs: [4, 2],
      ws: [4, 2],
      sharesets_nums: [2, 4],
      reparam_conv_k: [3],
      globalperceptron_reduce: 4,
    },
    x: [2, 3, 8, 8],
  },
  ...["full", "no_local", "no_global", "fc3_conv", "conv"].map((variant) => ({
    name: `kit RepMLPClassifier ${variant}`,
    arch: "RepMLPClassifier",
    kwargs: {
      channels: [8, 16],
      num_blocks: [1, 1],
      hs: [7, 7],
      fc3_groups: [2, 4],
      reparam_conv_k: [1, 3],
      stem_channels: 4,
      variant,
    },
    x: [2, 1, 28, 28],
  })),
  {
    name: "kit RepMLPFaceNet (small channels)",
    arch: "RepMLPFaceNet",
    kwargs: { stem_channels: [4, 8], channels: [8, 8], fc3_groups: [4, 4], embedding_dim: 16 },
    x: [2, 3, 96, 96],
  },
  {
    name: "imported FaceRecognitionNet (convscale, maxpool, avgpool, zeropad)",
    arch: "FaceRecognitionNet",
    kwargs: { image_size: 112, embedding_dim: 16 },
    x: [1, 3, 112, 112],
  },
];

Deno.test("train graph (eval BN) = reference train-structure forward, 1e-4", async (t) => {
  await initBackend("wasm");
  for (const c of CASES) {
    await t.step(c.name, async () => {
      const desc = buildModel(c.arch, c.kwargs);
      const sd = randomSD(desc, 7);
      const x = randInput(c.x, 3);
      const ref = forward(desc, sd, x, "train");
      const g = new TrainGraph(desc, sd);
      const y = tf.tidy(() => g.forward(tf.tensor(x.data, x.shape), false));
      const got = await y.data();
      y.dispose();
      assert.deepEqual(y.shape, ref.shape);
      const d = maxAbsDiff(got, ref.data);
      assert.ok(d <= 1e-4, `${c.name}: max |Δ| = ${d}`);
      g.dispose();
    });
  }
});
