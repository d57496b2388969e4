/** Bundles → served models: manifest parsing, micro-batching, and runtime-backed models vs the reference. */
import assert from "node:assert/strict";
import {
  batchingForward,
  parseManifest,
  pickDefault,
  servedModelFromBundle,
} from "../../runtime/src/server/bundles.ts";
import type { ClassifierModel, FaceModel } from "../../runtime/src/server/served_model.ts";
import { loadBundle } from "../../runtime/src/deploy_model.ts";
import { forward } from "../../runtime/src/reference.ts";
import { f32, maxAbsDiff } from "../../runtime/src/tensor.ts";
import { randn } from "../../runtime/src/random.ts";
import { writeTinyWeights } from "./api_testutil.ts";

Deno.test("api bundles: manifest validation and default choice", () => {
  const m = parseManifest({
    bundles: [
      { name: "a", task: "face", dtype: "fp32", file: "a.bundle" },
      { name: "b", task: "face", dtype: "int8", file: "b.bundle", default: true, threshold: 0.3 },
      { name: "c", task: "classifier", dtype: "fp32", file: "c.bundle", extra: 1 },
    ],
  });
  assert.equal(pickDefault(m, "face")?.name, "b");
  assert.equal(pickDefault(m, "classifier")?.name, "c");
  assert.throws(
    () => parseManifest({ bundles: [{ name: "x", task: "speech", dtype: "fp32", file: "x" }] }),
    /task/,
  );
  assert.throws(() => parseManifest({}), /bundles/);
});

Deno.test("api bundles: batchingForward merges queued calls and returns each caller its rows", async () => {
  const calls: number[] = [];
  const run = async (x: Float32Array, shape: [number, number, number, number]) => {
    calls.push(shape[0]);
    await new Promise((r) => setTimeout(r, 5));
    return x.map((v) => v * 2); // F = C·H·W
  };
  const fwd = batchingForward(run, 8);
  const inputs = Array.from({ length: 12 }, (_, i) => new Float32Array([i, i + 0.5]));
  const outs = await Promise.all(inputs.map((x) => fwd(x, [1, 2, 1, 1])));
  outs.forEach((y, i) => assert.deepEqual([...y], [2 * i, 2 * i + 1]));
  assert.deepEqual(calls, [1, 8, 3]); // first runs alone, the queue is drained in batches of ≤ 8
  await assert.rejects(
    batchingForward(() => Promise.reject(new Error("boom")))(new Float32Array(2), [1, 2, 1, 1]),
    /boom/,
  );
});

Deno.test("api bundles: served models on the reference and WASM runtimes match the reference forward", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeTinyWeights(dir);
    const faceBytes = await Deno.readFile(`${dir}/tiny-face.bundle`);
    const clsBytes = await Deno.readFile(`${dir}/tiny-fmnist.bundle`);
    const ref = await loadBundle(faceBytes);
    const x = randn([3, 3, 32, 32], 5);
    const y = forward(ref.desc, ref.tensors, x, "deploy").data;
    for (let i = 0; i < 3; i++) {
      let s = 0;
      for (let j = 0; j < 32; j++) s += y[i * 32 + j] ** 2;
      for (let j = 0; j < 32; j++) y[i * 32 + j] /= Math.sqrt(s);
    }
    for (const backend of ["reference", "wasm"] as const) {
      const face = await servedModelFromBundle(faceBytes, { name: "f", task: "face" }, { backend });
      const fm = face.model as FaceModel;
      assert.equal(fm.backend, backend);
      assert.equal(fm.dim, 32);
      assert.equal(fm.threshold, 0.4);
      assert.deepEqual(fm.inputSize, [3, 32, 32]);
      assert.deepEqual(fm.preprocess, { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
      const e = await fm.embed(x.data, 3);
      assert.ok(maxAbsDiff(e, y) < (backend === "wasm" ? 1e-4 : 1e-6), `${backend}: ${maxAbsDiff(e, y)}`);
      await face.session.dispose();
      const cls = await servedModelFromBundle(clsBytes, { name: "c", task: "classifier" }, { backend });
      const cm = cls.model as ClassifierModel;
      assert.equal(cm.labels[9], "Ankle boot");
      const logits = await cm.classify(new Float32Array(28 * 28).fill(0.1), 1);
      const cref = await loadBundle(clsBytes);
      const want = forward(
        cref.desc,
        cref.tensors,
        f32([1, 1, 28, 28], new Float32Array(784).fill(0.1)),
        "deploy",
      );
      assert.ok(maxAbsDiff(logits, want.data) < 1e-4);
      await cls.session.dispose();
    }
    const noThreshold = await Deno.readFile(`${dir}/tiny-fmnist.bundle`);
    await assert.rejects(
      servedModelFromBundle(noThreshold, { name: "x", task: "face" }, { backend: "reference" }),
      /no threshold/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
