/**
 * deno task ablation [--steps N | --epochs N] [--backend wasm] [--out-dir DIR] [--variants a,b,…]
 *
 * The paper's Table 1 ablation on Fashion-MNIST with equal budgets (same optimiser steps, same
 * recipe): full RepMLP, without Local Perceptron, without Global Perceptron, FC3 replaced by a
 * conv, and the plain-conv counterpart. Each variant is trained by `fit()` (the loop behind
 * `deno task train`); results go to <out-dir>/ablation.json and a Markdown table on stdout.
 */
import { buildModel, paramSpecs } from "../../runtime/src/arch/mod.ts";
import { CLASSIFIER_VARIANTS } from "../../runtime/src/arch/kit.ts";
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import { numel } from "../../runtime/src/tensor.ts";
import type { BackendName } from "../train/tfjs_backend.ts";
import { fit } from "../train/fit.ts";
import { TRAIN_PRESETS } from "../train/presets.ts";
import { main, parseCli } from "./_cli.ts";

const USAGE = `usage: deno task ablation [--steps N | --epochs N] [--backend wasm] [--out-dir DIR]
                        [--variants ${CLASSIFIER_VARIANTS.join(",")}]

Trains each variant of the Fashion-MNIST RepMLP with the same recipe and budget and prints the
paper-style table (test top-1, deploy parameters, training-time parameters, wall time).`;

const LABEL: Record<string, string> = {
  full: "RepMLP (full: global + partition + local perceptron)",
  no_local: "w/o Local Perceptron",
  no_global: "w/o Global Perceptron",
  fc3_conv: "FC3 replaced by a 7×7 conv",
  conv: "conv counterpart (3×3 conv instead of RepMLP)",
};

await main(async () => {
  const { values } = parseCli(USAGE, {
    steps: { type: "string" },
    epochs: { type: "string" },
    backend: { type: "string", default: "wasm" },
    "out-dir": { type: "string", default: "ablation-out" },
    variants: { type: "string", default: CLASSIFIER_VARIANTS.join(",") },
  });
  const variants = values.variants!.split(",");
  for (const v of variants) {
    if (!(CLASSIFIER_VARIANTS as readonly string[]).includes(v)) {
      throw new InvalidArgumentError(
        `unknown variant '${v}'`,
        `choose from ${CLASSIFIER_VARIANTS.join(", ")}`,
      );
    }
  }
  const budget = values.steps ? ["--max-steps", values.steps] : ["--epochs", values.epochs ?? "10"];
  const count = (flag: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) {
      throw new InvalidArgumentError(`${flag} must be a positive integer, got '${v}'`);
    }
    return n;
  };
  const steps = values.steps ? count("--steps", values.steps) : undefined;
  const epochs = values.steps ? undefined : count("--epochs", values.epochs ?? "10");
  const dir = values["out-dir"]!;
  await Deno.mkdir(dir, { recursive: true });
  const rows: Record<string, unknown>[] = [];
  for (const v of variants) {
    const preset = `fmnist-ablation-${v}`;
    const p = TRAIN_PRESETS[preset];
    const desc = buildModel(p.arch, p.kwargs);
    const params = (mode: "train" | "deploy") =>
      paramSpecs(desc.root, mode).filter((s) => s.dtype === "float32" && !/running_(mean|var)$/.test(s.key))
        .reduce((a, s) => a + numel(s.shape), 0);
    const out = `${dir}/${v}.safetensors`;
    console.log(`\n== ${v}: ${LABEL[v]}`);
    const t0 = performance.now();
    await fit({
      preset,
      out,
      backend: values.backend as BackendName,
      maxSteps: steps,
      epochs,
      onProgress: () => {}, // quiet: epoch summaries only
    });
    const lines = (await Deno.readTextFile(`${out}.log.jsonl`)).trim().split("\n").map((l) => JSON.parse(l));
    const done = lines.findLast((l) => l.event === "done");
    const row = {
      variant: v,
      label: LABEL[v],
      top1: done?.test_top1 ?? null,
      params_deploy: params("deploy"),
      params_train: params("train"),
      steps: done?.step,
      seconds: Math.round((performance.now() - t0) / 1000),
    };
    rows.push(row);
    await Deno.writeTextFile(
      `${dir}/ablation.json`,
      JSON.stringify({ budget: budget.join(" "), rows }, null, 2),
    );
  }
  console.log(`\n| variant | test top-1 | params (deploy) | params (train-time) | wall s |`);
  console.log(`|---|---|---|---|---|`);
  for (const r of rows) {
    console.log(
      `| ${r.label} | ${((r.top1 as number) * 100).toFixed(2)} % | ${
        ((r.params_deploy as number) / 1e6).toFixed(3)
      } M | ${((r.params_train as number) / 1e6).toFixed(3)} M | ${r.seconds} |`,
    );
  }
  console.log(`\nbudget: ${budget.join(" ")} per variant (batch 128), backend ${values.backend}`);
});
