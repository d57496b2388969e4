// The fold on configurations the shared cases do not cover, built from random weights: the folded
// deploy forward must equal the training-structure forward (both from the reference implementation).
import assert from "node:assert/strict";
import { buildModel } from "../../runtime/src/arch/registry.ts";
import { addConvAsFC } from "../../runtime/src/fold.ts";
import { foldStateDict, fuseBNIntoConv } from "../../runtime/src/fold.ts";
import { conv2d } from "../../runtime/src/kernels.ts";
import { detectMode } from "../../runtime/src/params.ts";
import { randn, randomStateDict, rng } from "../../runtime/src/random.ts";
import { forward } from "../../runtime/src/reference.ts";
import { ArchMismatchError, InvalidArgumentError, InvalidInputError } from "../../runtime/src/errors.ts";
import { f32, maxAbs, maxAbsDiff } from "../../runtime/src/tensor.ts";

interface Case {
  name: string;
  arch: string;
  kwargs: Record<string, unknown>;
  input: number[];
}

const cases: Case[] = [
  {
    name: "2021 RepMLP in≠out with conv branches (official fold is wrong here)",
    arch: "RepMLP",
    kwargs: {
      in_channels: 8,
      out_channels: 12,
      H: 8,
      W: 8,
      h: 4,
      w: 4,
      reparam_conv_k: [1, 3, 5],
      fc1_fc2_reduction: 2,
      fc3_groups: 2,
    },
    input: [2, 8, 8, 8],
  },
  {
    name: "2021 RepMLP in>out, g=1",
    arch: "RepMLP",
    kwargs: { in_channels: 12, out_channels: 4, H: 6, W: 6, h: 3, w: 3, reparam_conv_k: [3], fc3_groups: 1 },
    input: [1, 12, 6, 6],
  },
  {
    name: "2021 RepMLP odd non-square partitions, kernel 7 > partition",
    arch: "RepMLP",
    kwargs: {
      in_channels: 4,
      out_channels: 4,
      H: 9,
      W: 10,
      h: 3,
      w: 5,
      reparam_conv_k: [1, 7],
      fc3_groups: 2,
    },
    input: [2, 4, 9, 10],
  },
  {
    name: "2021 RepMLP without global perceptron (H,W == h,w)",
    arch: "RepMLP",
    kwargs: {
      in_channels: 6,
      out_channels: 6,
      H: 5,
      W: 5,
      h: 5,
      w: 5,
      reparam_conv_k: [3, 5],
      fc3_groups: 3,
    },
    input: [2, 6, 5, 5],
  },
  {
    name: "2021 RepMLP without conv branches",
    arch: "RepMLP",
    kwargs: { in_channels: 4, out_channels: 8, H: 4, W: 4, h: 2, w: 2, reparam_conv_k: null, fc3_groups: 1 },
    input: [2, 4, 4, 4],
  },
  {
    name: "RepMLPBlock odd non-square partitions, S<C, kernel 7 > partition",
    arch: "RepMLPBlock",
    kwargs: {
      in_channels: 12,
      out_channels: 12,
      h: 3,
      w: 5,
      reparam_conv_k: [1, 3, 7],
      globalperceptron_reduce: 4,
      num_sharesets: 3,
    },
    input: [2, 12, 6, 15],
  },
  {
    name: "RepMLPBlock without conv branches",
    arch: "RepMLPBlock",
    kwargs: { in_channels: 8, out_channels: 8, h: 2, w: 2, num_sharesets: 2, globalperceptron_reduce: 2 },
    input: [2, 8, 4, 6],
  },
  {
    name: "RepMLPNetUnit multi-partition",
    arch: "RepMLPNetUnit",
    kwargs: { channels: 8, h: 2, w: 3, reparam_conv_k: [1, 3], globalperceptron_reduce: 2, num_sharesets: 4 },
    input: [2, 8, 4, 6],
  },
  {
    name: "RepMLPBottleneckBlock in≠out (ConvBN shortcut)",
    arch: "RepMLPBottleneckBlock",
    kwargs: {
      in_channels: 8,
      mid_channels: 8,
      out_channels: 16,
      r: 2,
      H: 4,
      W: 4,
      h: 2,
      w: 2,
      reparam_conv_k: [1, 3],
      fc1_fc2_reduction: 2,
      fc3_groups: 2,
    },
    input: [2, 8, 4, 4],
  },
  {
    name: "RepMLPLightBlock",
    arch: "RepMLPLightBlock",
    kwargs: {
      in_channels: 4,
      mid_channels: 8,
      out_channels: 4,
      H: 6,
      W: 6,
      h: 3,
      w: 3,
      reparam_conv_k: [3],
      fc1_fc2_reduction: 4,
      fc3_groups: 2,
    },
    input: [2, 4, 6, 6],
  },
  {
    name: "whole RepMLPNet (two stages, multi-partition second stage)",
    arch: "RepMLPNet",
    kwargs: {
      num_class: 5,
      patch_size: 2,
      num_blocks: [1, 2],
      channels: [8, 16],
      hs: [4, 1],
      ws: [4, 1],
      sharesets_nums: [2, 4],
      reparam_conv_k: [1, 3],
      globalperceptron_reduce: 4,
    },
    input: [2, 3, 8, 8],
  },
];

Deno.test("fold: deploy forward equals training forward on random configurations", async (t) => {
  for (const [i, c] of cases.entries()) {
    await t.step(c.name, () => {
      const desc = buildModel(c.arch, c.kwargs);
      const train = randomStateDict(desc, "train", 100 + i);
      assert.equal(detectMode(desc, train), "train");
      const deploy = foldStateDict(desc, train);
      assert.equal(detectMode(desc, deploy), "deploy");
      const x = randn(c.input, 200 + i);
      const yt = forward(desc, train, x, "train");
      const yd = forward(desc, deploy, x, "deploy");
      const scale = Math.max(1, maxAbs(yt.data));
      const err = maxAbsDiff(yt.data, yd.data);
      assert.ok(err <= 2e-5 * scale, `max |train − deploy| = ${err} (max |out| ${scale})`);
      assert.ok(maxAbs(yt.data) > 1e-3, "output is not trivially zero");
    });
  }
});

Deno.test("fold: closed-form conv→FC equals convolving the identity basis (C≠O, groups, K>partition)", () => {
  const O = 6, C = 4, g = 2, Cg = C / g, K = 5, h = 3, w = 4, hw = h * w;
  const r = rng(7);
  const ker = new Float32Array(O * Cg * K * K).map(() => r() - 0.5);
  const fc = new Float32Array(O * hw * Cg * hw);
  addConvAsFC(fc, ker, K, O, Cg, h, w);
  // Identity construction: feed each one-hot partition through the conv; column j of the FC
  // is the response to basis vector j of one group's input channels.
  for (let gi = 0; gi < g; gi++) {
    for (let j = 0; j < Cg * hw; j++) {
      const x = f32([1, C, h, w]);
      x.data[gi * Cg * hw + j] = 1;
      const y = conv2d(x, ker, null, { outC: O, k: K, stride: 1, pad: (K - 1) / 2, groups: g });
      for (let o = gi * (O / g); o < (gi + 1) * (O / g); o++) {
        for (let p = 0; p < hw; p++) {
          assert.ok(Math.abs(fc[(o * hw + p) * Cg * hw + j] - y.data[o * hw + p]) < 1e-7);
        }
      }
    }
  }
});

Deno.test("arch: clear errors for bad kwargs, wrong checkpoints and bad inputs", () => {
  assert.throws(() => buildModel("RepMLPX", {}), InvalidArgumentError);
  assert.throws(
    () => buildModel("RepMLPBlock", { in_channels: 8, out_channels: 8, h: 2 }),
    /needs kwarg 'w'/,
  );
  assert.throws(
    () => buildModel("RepMLPBlock", { in_channels: 8, out_channels: 8, h: 2, w: 2, num_sharesets: 3 }),
    /divisible/,
  );
  assert.throws(
    () => buildModel("RepMLPBlock", { in_channels: 8, out_channels: 8, h: 2, w: 2, bogus: 1 }),
    /bogus/,
  );
  const desc = buildModel("RepMLPBlock", {
    in_channels: 8,
    out_channels: 8,
    h: 2,
    w: 2,
    reparam_conv_k: [3],
  });
  const other = buildModel("RepMLPBlock", {
    in_channels: 8,
    out_channels: 8,
    h: 4,
    w: 4,
    reparam_conv_k: [3],
  });
  const sd = randomStateDict(desc, "train", 1);
  assert.throws(() => detectMode(other, sd), ArchMismatchError);
  const missing = new Map(sd);
  missing.delete("fc3.weight");
  assert.throws(() => detectMode(desc, missing), /missing keys: fc3.weight/);
  const extra = new Map(sd);
  extra.set("bogus.weight", sd.get("fc3.weight")!);
  assert.throws(() => detectMode(desc, extra), /unexpected keys: bogus.weight/);
  assert.throws(() => forward(desc, sd, randn([1, 8, 5, 4], 1), "train"), InvalidInputError);
  assert.throws(() => forward(desc, sd, randn([1, 7, 4, 4], 1), "train"), InvalidInputError);
  const nan = randn([1, 8, 4, 4], 1);
  nan.data[3] = NaN;
  assert.throws(() => forward(desc, sd, nan, "train"), /non-finite/);
});

Deno.test("arch: official presets have the paper's parameter counts (RepMLPNet Table: 38.3M … 117.7M)", async () => {
  const { paramSpecs } = await import("../../runtime/src/arch/ir.ts");
  const { numel } = await import("../../runtime/src/tensor.ts");
  const paper: Record<string, number> = {
    "RepMLPNet-T224": 38.3,
    "RepMLPNet-B224": 68.2,
    "RepMLPNet-T256": 58.7,
    "RepMLPNet-B256": 96.5,
    "RepMLPNet-D256": 86.9,
    "RepMLPNet-L256": 117.7,
  };
  for (const [name, millions] of Object.entries(paper)) {
    const d = buildModel(name);
    const n = paramSpecs(d.root, "train")
      .filter((s) => s.dtype === "float32" && !s.key.includes("running_"))
      .reduce((a, s) => a + numel(s.shape), 0);
    assert.ok(Math.abs(n / 1e6 - millions) < 0.06, `${name}: ${n / 1e6}M vs paper ${millions}M`);
  }
});

Deno.test("fold: Conv(+bias)+BN → Conv equals the affine applied after the conv (linear case, 1e-6)", () => {
  const r = rng(11), O = 5, C = 7;
  const v = (n: number) => Float32Array.from({ length: n }, () => r() * 2 - 1);
  const W = v(O * C), c = v(O), x = v(C), bn = { t: v(O), b: v(O) };
  const lin = (w: Float32Array, bias: Float32Array) =>
    Array.from({ length: O }, (_, o) => x.reduce((a, xi, i) => a + w[o * C + i] * xi, bias[o]));
  const want = lin(W, c).map((y, o) => y * bn.t[o] + bn.b[o]);
  const f = fuseBNIntoConv(W, bn, c);
  lin(f.W, f.bias).forEach((y, o) => assert.ok(Math.abs(y - want[o]) < 1e-6, `${o}: ${y} vs ${want[o]}`));
  // Without a conv bias the shift is the BN's own.
  assert.deepEqual([...fuseBNIntoConv(W, bn).bias], [...bn.b]);
});
