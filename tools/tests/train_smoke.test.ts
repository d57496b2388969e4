/**
 * CI smoke training (wasm, < 2 min): `fit()` (the loop behind `deno task train`) on Fashion-MNIST with
 * the tiny preset, in process: the loss falls, the checkpoint converts (no --arch) and the folded deploy
 * model predicts what the tfjs eval-mode graph predicts; an interrupted run resumes where it stopped.
 * One spawn of the CLI checks its argument errors.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { convertStateDict, descFromRecord, MODEL_METADATA_KEY } from "../../runtime/src/convert.ts";
import { loadFashionMnist } from "../data/fashion_mnist.ts";
import { makeBatch } from "../data/augment.ts";
import { readSafetensors } from "../../runtime/src/io/safetensors.ts";
import { preprocess } from "../../runtime/src/image/normalize.ts";
import { forward } from "../../runtime/src/reference.ts";
import { f32, maxAbsDiff } from "../../runtime/src/tensor.ts";
import { initBackend } from "../train/tfjs_backend.ts";
import { TrainGraph } from "../train/tfjs_graph.ts";
import { fit, type FitOptions } from "../train/fit.ts";
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import { runCli } from "./cli_testutil.ts";

function train(out: string, extra: Partial<FitOptions>) {
  return fit({ preset: "fmnist-tiny", backend: "wasm", out, log: () => {}, onProgress: () => {}, ...extra });
}

function events(log: string) {
  return log.trim().split("\n").map((l) => JSON.parse(l));
}

Deno.test("smoke training on Fashion-MNIST (wasm): loss falls, converts, resumes", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "repmlp-train-" });
  const out = `${dir}/tiny.safetensors`;
  try {
    await t.step("train 60 steps: loss falls", async () => {
      const r = await train(out, { maxSteps: 60 });
      assert.ok(r.finished);
      assert.equal(r.step, 60);
      const ev = events(await Deno.readTextFile(`${out}.log.jsonl`));
      const steps = ev.filter((e) => e.event === "step");
      assert.equal(steps.at(-1).step, 60);
      const first = steps.slice(0, 2).reduce((a, e) => a + e.loss, 0) / 2;
      const last = steps.slice(-2).reduce((a, e) => a + e.loss, 0) / 2;
      assert.ok(last < first - 0.3, `loss did not fall: ${first.toFixed(3)} → ${last.toFixed(3)}`);
      const done = ev.find((e) => e.event === "done");
      assert.ok(done.test_top1 > 0.5, `test top-1 after 60 steps: ${done.test_top1}`);
      const svg = await Deno.readTextFile(`${out}.curves.svg`);
      assert.match(svg, /^<svg /);
    });

    await t.step("checkpoint → convert (no --arch) → deploy forward = tfjs eval forward", async () => {
      const { tensors, metadata } = readSafetensors(await Deno.readFile(out));
      assert.ok(metadata[MODEL_METADATA_KEY], "checkpoint records its architecture");
      const meta = JSON.parse(metadata.repmlp_edge_meta);
      const res = convertStateDict(tensors, { metadata });
      assert.equal(res.mode, "train");
      const test = await loadFashionMnist("test");
      const N = 16;
      const x = preprocess(meta.preprocess, test.images.subarray(0, N * 784), [N, 1, 28, 28]);
      // Same normalisation as the training batches.
      const { x: xb } = makeBatch(test, Int32Array.from({ length: N }, (_, i) => i), {
        pad: 0,
        flip: false,
        mean: meta.preprocess.mean,
        std: meta.preprocess.std,
      }, null);
      assert.ok(maxAbsDiff(x.data, xb) < 1e-6);
      const yDeploy = forward(res.desc, res.deploy, x, "deploy");
      await initBackend("wasm");
      const g = new TrainGraph(descFromRecord(JSON.parse(metadata[MODEL_METADATA_KEY])), tensors);
      const yt = tf.tidy(() => g.forward(tf.tensor(x.data, x.shape), false));
      const yTf = f32(yt.shape, new Float32Array(await yt.data()));
      yt.dispose();
      g.dispose();
      const d = maxAbsDiff(yDeploy.data, yTf.data);
      assert.ok(d < 1e-4, `deploy vs tfjs eval: max |Δ| = ${d}`);
    });

    await t.step("--resume continues the interrupted schedule", async () => {
      await train(out, { maxSteps: 70, resume: true });
      const ev = events(await Deno.readTextFile(`${out}.log.jsonl`));
      const starts = ev.filter((e) => e.event === "start");
      assert.equal(starts.at(-1).resumed_at_step, 60);
      assert.equal(ev.filter((e) => e.event === "step").at(-1).step, 70);
    });

    await t.step("an aborted run stops before its next step with a resumable checkpoint", async () => {
      const r = await train(out, { maxSteps: 80, resume: true, signal: AbortSignal.abort() });
      assert.equal(r.finished, false);
      assert.equal(r.step, 70);
      const ev = events(await Deno.readTextFile(`${out}.log.jsonl`));
      assert.equal(ev.at(-1).event, "interrupted");
      const resume = readSafetensors(await Deno.readFile(`${out}.resume.safetensors`));
      assert.equal(JSON.parse(resume.metadata.repmlp_edge_resume).step, 70);
    });

    await t.step(
      "bad input: missing resume file; the CLI: unknown preset → message and exit code",
      async () => {
        await assert.rejects(
          train(`${dir}/none.safetensors`, { resume: true }),
          (e) => e instanceof InvalidArgumentError && /--resume: .* not found/.test(e.message),
        );
        const bad = await runCli("train", ["--model", "nope", "--out", `${dir}/x.safetensors`]);
        assert.notEqual(bad.code, 0);
        assert.match(bad.stderr, /unknown model preset 'nope'.*\n.*fmnist-repmlp/);
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
