// Random-weight configurations the shared cases do not cover. The ORT output of the deploy graph
// (built from the TRAIN state_dict, folded at load) is compared with the reference forward in
// TRAINING mode on that same state_dict — so fold + graph are validated together.
// Tolerance: 1e-4 · max(1, max|out|).
import assert from "node:assert/strict";
import { buildModel } from "../../runtime/src/arch/registry.ts";
import type { ModelDesc } from "../../runtime/src/arch/ir.ts";
import { buildOnnx } from "../../runtime/src/onnx/graph.ts";
import { randn, randomStateDict } from "../../runtime/src/random.ts";
import { forward } from "../../runtime/src/reference.ts";
import { createSession } from "../../runtime/src/backends/mod.ts";
import { ortWebEngine } from "../../runtime/src/backends/ort_web.ts";
import { maxAbs, maxAbsDiff } from "../../runtime/src/tensor.ts";

interface Cfg {
  name: string;
  arch: string;
  kwargs: Record<string, unknown>;
  /** Input H, W (for free-size models). */
  hw?: [number, number];
}

const CFGS: Cfg[] = [
  {
    name: "RepMLPBlock odd non-square partitions 3×5, 2×2 of them, S<C (reshape quirk active)",
    arch: "RepMLPBlock",
    kwargs: { in_channels: 12, out_channels: 12, h: 3, w: 5, reparam_conv_k: [1, 3], num_sharesets: 3 },
    hw: [6, 10],
  },
  {
    name: "RepMLPBlock 3×1 partitions of 3×5",
    arch: "RepMLPBlock",
    kwargs: { in_channels: 8, out_channels: 8, h: 3, w: 5, reparam_conv_k: [3], num_sharesets: 2 },
    hw: [9, 5],
  },
  {
    name: "RepMLPBlock without conv branches",
    arch: "RepMLPBlock",
    kwargs: { in_channels: 8, out_channels: 8, h: 4, w: 4, reparam_conv_k: null, num_sharesets: 2 },
    hw: [8, 12],
  },
  {
    name: "RepMLPBlock kernels larger than the partition (k=5,7 on 3×3)",
    arch: "RepMLPBlock",
    kwargs: { in_channels: 8, out_channels: 8, h: 3, w: 3, reparam_conv_k: [1, 5, 7], num_sharesets: 4 },
    hw: [6, 6],
  },
  {
    name: "2021 RepMLP without global perceptron (H,W = h,w), groups 2",
    arch: "RepMLP",
    kwargs: {
      in_channels: 8,
      out_channels: 8,
      H: 4,
      W: 4,
      h: 4,
      w: 4,
      reparam_conv_k: [1, 3],
      fc3_groups: 2,
    },
  },
  {
    name: "2021 RepMLP in≠out with conv branches (the official fold is wrong here; ours is not)",
    arch: "RepMLP",
    kwargs: {
      in_channels: 8,
      out_channels: 12,
      H: 8,
      W: 4,
      h: 4,
      w: 4,
      reparam_conv_k: [1, 3],
      fc1_fc2_reduction: 2,
      fc3_groups: 4,
    },
  },
  {
    name: "2021 RepMLP odd partitions, groups 3, kernel 7 > partition",
    arch: "RepMLP",
    kwargs: {
      in_channels: 6,
      out_channels: 6,
      H: 6,
      W: 10,
      h: 3,
      w: 5,
      reparam_conv_k: [3, 7],
      fc1_fc2_reduction: 3,
      fc3_groups: 3,
    },
  },
  {
    name: "RepMLPLightBlock in≠out (conv shortcut)",
    arch: "RepMLPLightBlock",
    kwargs: {
      in_channels: 8,
      mid_channels: 8,
      out_channels: 16,
      H: 8,
      W: 8,
      h: 4,
      w: 4,
      reparam_conv_k: [3],
      fc3_groups: 2,
    },
  },
  {
    name: "whole small RepMLPNet (2 stages, embeds, head)",
    arch: "RepMLPNet",
    kwargs: {
      in_channels: 3,
      num_class: 10,
      patch_size: 4,
      num_blocks: [1, 2],
      channels: [8, 16],
      hs: [4, 2],
      ws: [4, 2],
      sharesets_nums: [2, 4],
      reparam_conv_k: [1, 3],
      globalperceptron_reduce: 4,
    },
  },
  {
    name: "RepMLPNetUnit with FFN, 2×3 partitions",
    arch: "RepMLPNetUnit",
    kwargs: {
      channels: 8,
      h: 2,
      w: 3,
      reparam_conv_k: [1, 3],
      globalperceptron_reduce: 2,
      ffn_expand: 2,
      num_sharesets: 2,
    },
    hw: [4, 9],
  },
];

function inputShape(desc: ModelDesc, hw?: [number, number]): number[] {
  const [C, H, W] = desc.input;
  return [3, C, H ?? hw![0], W ?? hw![1]];
}

Deno.test("onnx configs: ORT wasm deploy graph = reference training-mode forward", async (t) => {
  for (const [i, cfg] of CFGS.entries()) {
    await t.step(cfg.name, async () => {
      const desc = buildModel(cfg.arch, cfg.kwargs);
      const train = randomStateDict(desc, "train", 100 + i);
      const x = randn(inputShape(desc, cfg.hw), 200 + i);
      const ref = forward(desc, train, x, "train");
      const s = await createSession({ desc, tensors: train }, {
        backend: "wasm",
        inputHW: cfg.hw,
        log: () => {},
      });
      const y = await s.run(x);
      await s.dispose();
      assert.deepEqual(y.shape, ref.shape);
      const d = maxAbsDiff(y.data, ref.data), tol = 1e-4 * Math.max(1, maxAbs(ref.data));
      assert.ok(d < tol, `max diff ${d} (tol ${tol})`);
    });
  }
});

Deno.test("onnx configs: training-structure graph = reference training-mode forward", async (t) => {
  const eng = await ortWebEngine("wasm", { threads: 1 });
  for (const [i, cfg] of CFGS.entries()) {
    await t.step(cfg.name, async () => {
      const desc = buildModel(cfg.arch, cfg.kwargs);
      const train = randomStateDict(desc, "train", 100 + i);
      const x = randn(inputShape(desc, cfg.hw), 200 + i);
      const ref = forward(desc, train, x, "train");
      for (const fc3 of ["matmul", "conv"] as const) {
        const g = buildOnnx(desc, train, {
          structure: "train",
          fc3,
          inputHW: cfg.hw ?? [x.shape[2], x.shape[3]],
        });
        const s = await eng.create(g.bytes);
        const y = await s.run(x.data, x.shape);
        await s.release();
        const d = maxAbsDiff(y.data, ref.data), tol = 1e-4 * Math.max(1, maxAbs(ref.data));
        assert.ok(d < tol, `${fc3}: max diff ${d} (tol ${tol})`);
      }
    });
  }
});

Deno.test("onnx configs: free-size model builds one graph per input size, reuses it, takes concurrent calls", async () => {
  const desc = buildModel("RepMLPBlock", { in_channels: 8, out_channels: 8, h: 2, w: 2, num_sharesets: 2 });
  const train = randomStateDict(desc, "train", 7);
  const s = await createSession({ desc, tensors: train }, { backend: "wasm", log: () => {} });
  for (const [H, W] of [[4, 4], [2, 6], [4, 4]]) {
    const x = randn([2, 8, H, W], H * 10 + W);
    const d = maxAbsDiff((await s.run(x)).data, forward(desc, train, x, "train").data);
    assert.ok(d < 1e-4, `${H}×${W}: ${d}`);
  }
  // Concurrent calls (a server's parallel requests), including a size not built yet.
  const xs = [[4, 4], [6, 2], [2, 6], [6, 2], [4, 4]].map(([H, W], i) => randn([1 + i, 8, H, W], 50 + i));
  const ys = await Promise.all(xs.map((x) => s.run(x)));
  for (const [i, y] of ys.entries()) {
    assert.ok(maxAbsDiff(y.data, forward(desc, train, xs[i], "train").data) < 1e-4, `concurrent call ${i}`);
  }
  await s.dispose();
});
