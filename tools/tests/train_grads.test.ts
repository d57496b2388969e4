/**
 * Hand-written gradients (src/train/ops.ts) against tfjs' own autograd of the plain ops, on the
 * cpu backend (which has every backward kernel), and PyTorch-style BN running-stat updates.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { buildModel } from "../../runtime/src/arch/mod.ts";
import { maxAbsDiff } from "../../runtime/src/tensor.ts";
import { initBackend } from "../train/tfjs_backend.ts";
import { type BNUpdate, TrainGraph } from "../train/tfjs_graph.ts";
import { bmm, bnTrain, conv2d, convAsFC, mm } from "../train/grad_ops.ts";

async function close(a: tf.Tensor, b: tf.Tensor, tol: number, what: string) {
  assert.deepEqual(a.shape, b.shape, `${what}: shape`);
  const d = maxAbsDiff(await a.data(), await b.data());
  assert.ok(d <= tol, `${what}: max |Δ| = ${d}`);
}

/** Reference grouped conv with tf.conv2d per group (NHWC, OIHW weight). */
function refConv(x: tf.Tensor4D, w: tf.Tensor4D, stride: number, pad: number, groups: number): tf.Tensor4D {
  const xp = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]]);
  const hwio = tf.transpose(w, [2, 3, 1, 0]) as tf.Tensor4D;
  if (groups === 1) return tf.conv2d(xp, hwio, stride, "valid"); // (tfjs' 1-way split has a broken gradient)
  const xs = tf.split(xp, groups, 3), ws = tf.split(hwio, groups, 3);
  return tf.concat(xs.map((xg, i) => tf.conv2d(xg as tf.Tensor4D, ws[i] as tf.Tensor4D, stride, "valid")), 3);
}

Deno.test("custom gradients match tfjs autograd (cpu backend, 1e-4)", async (t) => {
  await initBackend("cpu");
  const seed = 5;
  const probe = (shape: number[]) => tf.randomNormal(shape, 0, 1, "float32", seed + shape.length);

  await t.step("mm and bmm", async () => {
    const a = tf.randomNormal([6, 5], 0, 1, "float32", 1), b = tf.randomNormal([5, 7], 0, 1, "float32", 2);
    const dy = probe([6, 7]);
    const g1 = tf.grads((x: tf.Tensor, y: tf.Tensor) => mm(x as tf.Tensor2D, y as tf.Tensor2D))([a, b], dy);
    const g2 = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.matMul(x as tf.Tensor2D, y as tf.Tensor2D))(
      [a, b],
      dy,
    );
    await close(g1[0], g2[0], 1e-4, "mm da");
    await close(g1[1], g2[1], 1e-4, "mm db");
    const a3 = tf.randomNormal([3, 4, 9], 0, 1, "float32", 3),
      b3 = tf.randomNormal([3, 9, 2], 0, 1, "float32", 4);
    const dy3 = probe([3, 4, 2]);
    const h1 = tf.grads((x: tf.Tensor, y: tf.Tensor) => bmm(x as tf.Tensor3D, y as tf.Tensor3D))(
      [a3, b3],
      dy3,
    );
    const h2 = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.matMul(x as tf.Tensor3D, y as tf.Tensor3D))([
      a3,
      b3,
    ], dy3);
    await close(h1[0], h2[0], 1e-4, "bmm da");
    await close(h1[1], h2[1], 1e-4, "bmm db");
  });

  const convCases = [
    { name: "3×3 pad 1", C: 4, O: 6, k: 3, stride: 1, pad: 1, groups: 1 },
    { name: "grouped 3×3", C: 8, O: 8, k: 3, stride: 1, pad: 1, groups: 4 },
    { name: "depthwise 5×5", C: 3, O: 3, k: 5, stride: 1, pad: 2, groups: 3 },
    { name: "patchify k2 s2", C: 3, O: 5, k: 2, stride: 2, pad: 0, groups: 1 },
    { name: "strided 3×3 s2", C: 2, O: 4, k: 3, stride: 2, pad: 1, groups: 1 },
    { name: "1×1", C: 5, O: 3, k: 1, stride: 1, pad: 0, groups: 1 },
  ];
  for (const c of convCases) {
    await t.step(`conv2d ${c.name}`, async () => {
      const x = tf.randomNormal([2, 6, 6, c.C], 0, 1, "float32", 7) as tf.Tensor4D;
      const w = tf.randomNormal([c.O, c.C / c.groups, c.k, c.k], 0, 1, "float32", 8) as tf.Tensor4D;
      const y1 = conv2d(x, w, c), y2 = refConv(x, w, c.stride, c.pad, c.groups);
      await close(y1, y2, 1e-4, "forward");
      const dy = probe(y2.shape);
      const g1 = tf.grads((a: tf.Tensor, b: tf.Tensor) => conv2d(a as tf.Tensor4D, b, c))([x, w], dy);
      const g2 = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        refConv(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad, c.groups)
      )([x, w], dy);
      await close(g1[0], g2[0], 1e-4, "dx");
      await close(g1[1], g2[1], 1e-4, "dw");
    });
  }

  await t.step("convAsFC = conv on a partition (forward and weight gradient)", async () => {
    const [h, w, Cg, O, k] = [3, 4, 2, 3, 3];
    const rows = tf.randomNormal([5, Cg * h * w], 0, 1, "float32", 9) as tf.Tensor2D; // (R, (c,y,x))
    const K = tf.randomNormal([O, Cg, k, k], 0, 1, "float32", 10) as tf.Tensor4D;
    const viaFC = (kk: tf.Tensor) => tf.matMul(rows, tf.transpose(convAsFC(kk, h, w)));
    const viaConv = (kk: tf.Tensor) => {
      const img = tf.transpose(tf.reshape(rows, [5, Cg, h, w]), [0, 2, 3, 1]) as tf.Tensor4D;
      const y = refConv(img, kk as tf.Tensor4D, 1, 1, 1);
      return tf.reshape(tf.transpose(y, [0, 3, 1, 2]), [5, O * h * w]);
    };
    await close(viaFC(K), viaConv(K), 1e-4, "forward");
    const dy = probe([5, O * h * w]);
    await close(tf.grad(viaFC)(K, dy), tf.grad(viaConv)(K, dy), 1e-4, "dK");
  });

  await t.step("bnTrain backward = autograd through moments", async () => {
    const x = tf.randomNormal([4, 3, 5, 6], 0, 2, "float32", 11);
    const gamma = tf.randomNormal([1, 1, 1, 6], 1, 0.2, "float32", 12);
    const beta = tf.randomNormal([1, 1, 1, 6], 0, 0.2, "float32", 13);
    const dy = probe([4, 3, 5, 6]);
    const f1 = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => bnTrain(a, g, b, [0, 1, 2], 1e-5).y;
    const f2 = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const { mean, variance } = tf.moments(a, [0, 1, 2], true);
      return tf.add(tf.mul(tf.div(tf.sub(a, mean), tf.sqrt(tf.add(variance, 1e-5))), g), b);
    };
    await close(f1(x, gamma, beta), f2(x, gamma, beta), 1e-4, "forward");
    const g1 = tf.grads(f1)([x, gamma, beta], dy), g2 = tf.grads(f2)([x, gamma, beta], dy);
    for (let i = 0; i < 3; i++) await close(g1[i], g2[i], 1e-4, ["dx", "dγ", "dβ"][i]);
  });
});

Deno.test("BN running stats follow PyTorch (momentum 0.1, unbiased variance)", async () => {
  await initBackend("cpu");
  // A single conv+BN: batch stats of the conv output are easy to recompute here.
  const desc = buildModel("RepMLPClassifier", {
    channels: [4],
    num_blocks: [1],
    hs: [7],
    fc3_groups: [1],
    image_size: 14,
  });
  const g = new TrainGraph(desc, undefined, 3);
  const x = tf.randomNormal([5, 1, 14, 14], 0, 1, "float32", 21);
  const before = await g.stateDict();
  const upd: BNUpdate[] = [];
  tf.tidy(() => void g.forward(x, true, upd));
  g.updateBN(upd);
  const after = await g.stateDict();
  // down0 = patchify conv (k=2, s=2) → BN over 4 channels.
  const w = before.get("down0.conv.weight")!.data as Float32Array;
  const conv = tf.tidy(() =>
    tf.conv2d(
      tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D,
      tf.transpose(tf.tensor(w, [4, 1, 2, 2]), [2, 3, 1, 0]) as tf.Tensor4D,
      2,
      "valid",
    )
  );
  const v = await conv.data();
  const n = v.length / 4;
  const rm = after.get("down0.bn.running_mean")!.data as Float32Array;
  const rv = after.get("down0.bn.running_var")!.data as Float32Array;
  for (let c = 0; c < 4; c++) {
    let s = 0, s2 = 0;
    for (let i = c; i < v.length; i += 4) s += v[i];
    const mean = s / n;
    for (let i = c; i < v.length; i += 4) s2 += (v[i] - mean) ** 2;
    const unbiased = s2 / (n - 1);
    assert.ok(Math.abs(rm[c] - 0.1 * mean) < 1e-5, `running_mean[${c}]`);
    assert.ok(Math.abs(rv[c] - (0.9 + 0.1 * unbiased)) < 1e-5, `running_var[${c}]`);
  }
  assert.equal(after.get("down0.bn.num_batches_tracked")!.data[0], 1n);
  assert.equal(after.get("down0.bn.num_batches_tracked")!.shape.length, 0);
  g.dispose();
});
