/**
 * deno task eval <bundle|checkpoint.safetensors> [--dataset <spec>] [--backend …] [--json out.json]
 *                [--write-threshold]
 *
 * deno task eval <face bundle> --pairs <pairs.txt | pairs.csv> --images <dir> [--align detect|none]
 *
 * Classifiers: top-1 on the test split. Face (embedding) models: verification over every pair of
 * held-out identities (ROC, TAR at FAR = 1e-3 / 1e-2, best accuracy and its threshold);
 * --write-threshold stores the threshold and the metrics in the bundle's meta. With --pairs: the
 * LFW protocol on a pair list (tools/eval/).
 */
import cliProgress from "cli-progress";
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import { readFileBytes } from "../../runtime/src/io/files.ts";
import { initBackend } from "../train/tfjs_backend.ts";
import { loadDataset } from "../train/datasets.ts";
import { predictSet, top1, verification } from "../train/evaluate.ts";
import { evaluatePairs, openEmbedModel, type PairEvaluation, parsePairs } from "../eval/mod.ts";
import { openEvalModel, withThreshold } from "../eval/model.ts";
import { main, parseCli } from "./_cli.ts";

const USAGE = `usage: deno task eval <bundle | checkpoint.safetensors> [options]

  --dataset SPEC     fashion-mnist[:DIR] | folder:PATH | synthetic-faces[:IDS] (default: from the model's meta)
  --backend NAME     bundles: auto|wasm|webgpu|native|reference (default wasm, onnxruntime-web);
                     checkpoints: tfjs auto|wasm|webgpu|cpu (default wasm)
  --batch N          evaluation batch (default 256)
  --json FILE        write the metrics as JSON
  --write-threshold  face bundles: store the best-accuracy threshold and metrics in the bundle meta

  Pair lists (LFW protocol: per-fold threshold chosen on the other folds, mean accuracy ± std,
  ROC AUC, TAR at FAR = 1e-3 / 1e-2):
  --pairs FILE       LFW pairs.txt (header '<folds> <n>', matched 'name i j', mismatched
                     'name1 i name2 j') or a .csv of path_a,path_b,same[,fold]
  --images DIR       LFW: DIR/<name>/<name>_<iiii>.jpg; CSV: base folder of relative paths
                     (default: the pairs file's folder)
  --align MODE       detect (default): find the face and align it on its 5 landmarks;
                     none: the images are face crops already
  --folds K          CSV without a fold column: spread pairs over K folds (default 10)`;

async function evalPairs(bundlePath: string, v: Record<string, string | boolean | undefined>) {
  const pairsPath = v.pairs as string;
  const dir = (v.images as string | undefined) ??
    (pairsPath.includes("/") ? pairsPath.replace(/\/[^/]*$/, "") : ".");
  const align = (v.align ?? "detect") as string;
  if (align !== "detect" && align !== "none") {
    throw new InvalidArgumentError(`--align must be detect or none, got '${align}'`);
  }
  const folds = Number(v.folds ?? 10);
  if (!Number.isInteger(folds) || folds < 1) {
    throw new InvalidArgumentError("--folds must be a positive integer");
  }
  const pairs = parsePairs(await Deno.readTextFile(pairsPath), pairsPath, dir, folds);
  const model = await openEmbedModel(bundlePath, (v.backend ?? "wasm") as "wasm");
  let detector;
  if (align === "detect") {
    await initBackend("wasm");
    detector = await (await import("../data/faceapi_detect.ts")).faceApiDetector();
  }
  console.log(
    `eval     ${bundlePath} on ${pairsPath} (${pairs.length} pairs) with ${model.engine}, align ${align}`,
  );
  const r = await evaluatePairs(pairs, model, { align, detector, batch: Number(v.batch) });
  await model.dispose();
  printPairs(r);
  if (v.json) {
    const { roc, scores, ...rest } = r;
    await Deno.writeTextFile(
      v.json as string,
      JSON.stringify(
        { task: "face-verification-pairs", pairs_file: pairsPath, align, ...rest, roc, scores },
        null,
        2,
      ) +
        "\n",
    );
  }
}

function printPairs(r: PairEvaluation) {
  const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
  console.log(
    `pairs    ${r.pairs.positive} genuine / ${r.pairs.negative} impostor, ${r.images} images, ${r.folds} fold(s)` +
      (r.undetected.length ? `, no face found in ${r.undetected.length} (centre crop used)` : ""),
  );
  console.log(
    `accuracy ${pct(r.meanAccuracy)} ± ${pct(r.stdAccuracy)} (threshold per fold from the other folds${
      r.folds === 1 ? "; ONE fold: fitted on itself, optimistic" : ""
    }; answering the majority class scores ${
      pct(Math.max(r.pairs.positive, r.pairs.negative) / (r.pairs.positive + r.pairs.negative))
    })`,
  );
  console.log(`AUC      ${r.auc.toFixed(4)}`);
  const far = (f: string) =>
    Number(f) < r.farResolution
      ? `${pct(r.tarAtFar[f])} (FAR ${f} < 1/${r.pairs.negative} impostors: at FAR 0)`
      : pct(r.tarAtFar[f]);
  console.log(`TAR      ${far("0.001")} @ FAR=1e-3, ${far("0.01")} @ FAR=1e-2`);
  console.log(`best acc ${pct(r.bestAccuracy)} at cosine threshold ${r.threshold.toFixed(4)} (all pairs)`);
}

await main(async () => {
  const { values, positionals } = parseCli(USAGE, {
    dataset: { type: "string", short: "d" },
    backend: { type: "string" },
    batch: { type: "string", default: "256" },
    json: { type: "string" },
    "write-threshold": { type: "boolean", default: false },
    pairs: { type: "string" },
    images: { type: "string" },
    align: { type: "string" },
    folds: { type: "string" },
  });
  const [path] = positionals;
  if (!path || positionals.length > 1) {
    throw new InvalidArgumentError("give exactly one bundle or checkpoint", USAGE);
  }
  if (values.pairs) return await evalPairs(path, values);
  const batch = Number(values.batch);
  if (!Number.isInteger(batch) || batch < 1) {
    throw new InvalidArgumentError("--batch must be a positive integer");
  }
  const bytes = await readFileBytes(path);

  // Either a bundle (deploy weights) or a training checkpoint from `deno task train`.
  const model = await openEvalModel(bytes, values.backend);
  const { meta, predict, engine, bundle } = model;
  const training = (meta.training ?? {}) as Record<string, unknown>;
  const spec = values.dataset ?? (training.dataset as string | undefined);
  if (!spec) throw new InvalidArgumentError("the model's meta names no dataset", "pass --dataset");
  const embed = meta.task === "face-embedding";
  const data = await loadDataset(spec, { testOnly: true, task: embed ? "embed" : "classify" });
  const test = data.test!;
  const pre = meta.preprocess as { mean: number[]; std: number[] } | undefined;
  const norm = pre ?? data;
  console.log(`eval     ${path} on ${spec} test split (${test.n} images) with ${engine}`);

  const bar = new cliProgress.SingleBar({
    format: "         [{bar}] {value}/{total} images",
    hideCursor: true,
  });
  const tty = Deno.stdout.isTerminal();
  if (tty) bar.start(test.n, 0);
  const t0 = performance.now();
  const { out, dim } = await predictSet(test, predict, norm, batch, (d) => tty && bar.update(d));
  if (tty) bar.stop();
  const secs = (performance.now() - t0) / 1000;
  let result: Record<string, unknown>;
  if (!embed) {
    const acc = top1(out, dim, test.labels);
    result = { task: "classification", dataset: spec, images: test.n, top1: acc };
    console.log(
      `top-1    ${(acc * 100).toFixed(2)} % (${test.n} images, ${(test.n / secs).toFixed(0)} img/s)`,
    );
  } else {
    const v = verification(out, dim, test.labels);
    result = {
      task: "face-verification",
      dataset: spec,
      images: test.n,
      identities: test.classes.length,
      pairs: v.pairs,
      auc: v.auc,
      tar_at_far: v.tarAtFar,
      threshold_at_far: v.thresholdAtFar,
      best_accuracy: v.bestAccuracy,
      threshold: v.threshold,
      roc: v.roc,
    };
    console.log(
      `pairs    ${v.pairs.positive} genuine / ${v.pairs.negative} impostor (${test.classes.length} held-out identities)`,
    );
    console.log(`AUC      ${v.auc.toFixed(4)}`);
    console.log(
      `TAR      ${(v.tarAtFar["0.001"] * 100).toFixed(2)} % @ FAR=1e-3, ${
        (v.tarAtFar["0.01"] * 100).toFixed(2)
      } % @ FAR=1e-2`,
    );
    console.log(
      `best acc ${(v.bestAccuracy * 100).toFixed(2)} % at cosine threshold ${v.threshold.toFixed(4)}`,
    );
    if (values["write-threshold"]) {
      if (!bundle) throw new InvalidArgumentError("--write-threshold needs a bundle (run convert first)");
      const outBytes = await withThreshold(bundle, spec, v);
      await Deno.writeFile(path, outBytes);
      console.log(`wrote    threshold ${v.threshold.toFixed(4)} into ${path}`);
    }
  }
  if (values.json) await Deno.writeTextFile(values.json, JSON.stringify(result, null, 2) + "\n");
  await model.dispose();
});
