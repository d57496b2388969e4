/**
 * deno task train --model <preset> [--dataset <spec>] [--epochs N] [--max-seconds S]
 *                 [--backend auto|webgpu|wasm|cpu] --out <checkpoint.safetensors> [--resume]
 *
 * Trains a kit model with tfjs and writes a training-time checkpoint with the official PyTorch key
 * names (so `deno task convert <checkpoint> --out <bundle>` takes it unchanged, no --arch needed),
 * a JSON-lines log, a training-curves SVG and a resume file beside it.
 */
import cliProgress from "cli-progress";
import * as tf from "@tensorflow/tfjs";
import { buildModel } from "../../runtime/src/arch/mod.ts";
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import { readSafetensors, writeSafetensors } from "../../runtime/src/io/safetensors.ts";
import { makeBatch, permutation } from "../data/augment.ts";
import { rng } from "../../runtime/src/random.ts";
import type { StateDict } from "../../runtime/src/tensor.ts";
import { type BackendName, initBackend, webgpuNote } from "../train/backend.ts";
import { curvesSvg, type Pt } from "../train/curves.ts";
import { loadDataset } from "../train/data.ts";
import { predictSet, top1, verification } from "../train/evaluate.ts";
import { TrainGraph } from "../train/graph.ts";
import { getPreset, TRAIN_PRESETS } from "../train/presets.ts";
import {
  AMSoftmax,
  cosineLR,
  crossEntropy,
  type LossFn,
  predictBatch,
  SGD,
  trainStep,
} from "../train/trainer.ts";
import { main, parseCli } from "./_cli.ts";

const USAGE = `usage: deno task train --model <preset> --out <checkpoint.safetensors> [options]

  --model        preset (architecture + recipe):
${Object.entries(TRAIN_PRESETS).map(([k, p]) => `                   ${k.padEnd(26)} ${p.doc}`).join("\n")}
  --dataset      fashion-mnist[:DIR] | folder:PATH | synthetic-faces[:IDENTITIES]  (default: the preset's)
  --epochs N     epochs (default: the preset's)
  --max-seconds S  wall-clock budget; the cosine schedule is compressed to end within it
  --max-steps N  stop after N optimiser steps (the schedule is fitted to them)
  --batch B      batch size        --lr LR   base learning rate     --seed N   seed (default 0)
  --backend      auto|webgpu|wasm|cpu (default auto: webgpu → wasm → cpu)
  --resume       continue from <out>.resume.safetensors (same preset/dataset)
  --init CKPT    start from the weights of a checkpoint (new schedule: fine-tuning)
  --kwargs JSON  override the preset's architecture kwargs, e.g. '{"hs": [8, 8]}' for 32×32 images
  --checkpoint-seconds S  save every S seconds (default 300) as well as after every epoch
  --quiet        no progress bar

Writes <out>, <out>.log.jsonl, <out>.curves.svg and <out>.resume.safetensors.`;

const num = (v: string | undefined, what: string, int = false): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (int && !Number.isInteger(n))) {
    throw new InvalidArgumentError(`--${what} must be a positive ${int ? "integer" : "number"}, got '${v}'`);
  }
  return n;
};

interface ResumeState {
  preset: string;
  dataset: string;
  epoch: number;
  stepInEpoch: number;
  step: number;
  elapsed: number;
  loss: Pt[];
  metrics: Record<string, Pt[]>;
}

await main(async () => {
  const { values } = parseCli(USAGE, {
    model: { type: "string", short: "m" },
    dataset: { type: "string", short: "d" },
    epochs: { type: "string" },
    "max-seconds": { type: "string" },
    "max-steps": { type: "string" },
    batch: { type: "string" },
    lr: { type: "string" },
    seed: { type: "string", default: "0" },
    backend: { type: "string", default: "auto" },
    out: { type: "string", short: "o" },
    resume: { type: "boolean", default: false },
    init: { type: "string" },
    kwargs: { type: "string" },
    "checkpoint-seconds": { type: "string", default: "300" },
    quiet: { type: "boolean", default: false },
  });
  if (!values.model) throw new InvalidArgumentError("--model <preset> is required", USAGE);
  if (!values.out) throw new InvalidArgumentError("--out <checkpoint.safetensors> is required");
  const presetName = values.model;
  const preset = getPreset(presetName);
  const out = values.out;
  const datasetSpec = values.dataset ?? preset.dataset;
  const epochs = num(values.epochs, "epochs", true) ?? preset.epochs;
  const maxSeconds = num(values["max-seconds"], "max-seconds");
  const maxSteps = num(values["max-steps"], "max-steps", true);
  const batch = num(values.batch, "batch", true) ?? preset.batch;
  const baseLr = num(values.lr, "lr") ?? preset.lr;
  const seed = Number(values.seed);
  const ckptEvery = num(values["checkpoint-seconds"], "checkpoint-seconds")!;
  const resumePath = `${out}.resume.safetensors`, logPath = `${out}.log.jsonl`, svgPath = `${out}.curves.svg`;

  const backend = await initBackend(values.backend as BackendName);
  if (values.backend === "auto" && webgpuNote) console.log(`note     ${webgpuNote}`);
  const data = await loadDataset(datasetSpec, { seed, task: preset.task });
  const { train, test } = data;
  const embed = preset.task === "embed";
  // Classifier head size follows the dataset.
  let over: Record<string, unknown> = {};
  if (values.kwargs) {
    try {
      over = JSON.parse(values.kwargs);
      if (typeof over !== "object" || over === null || Array.isArray(over)) {
        throw new Error("not a JSON object");
      }
    } catch (e) {
      throw new InvalidArgumentError(
        `--kwargs is not a JSON object: ${(e as Error).message}`,
        `e.g. --kwargs '{"hs": [8, 8]}'`,
      );
    }
  }
  const kwargs = { ...preset.kwargs, ...over };
  if (!embed) kwargs.num_class = data.classes.length;
  if (train.c !== (kwargs.in_channels ?? (embed ? 3 : 1))) kwargs.in_channels = train.c;
  if (train.h !== train.w) throw new InvalidArgumentError(`images must be square, got ${train.h}×${train.w}`);
  kwargs.image_size = train.h;
  const desc = buildModel(preset.arch, kwargs);

  // Resume: weights from <out>, optimiser + progress from the resume file.
  let state: ResumeState = {
    preset: presetName,
    dataset: datasetSpec,
    epoch: 0,
    stepInEpoch: 0,
    step: 0,
    elapsed: 0,
    loss: [],
    metrics: {},
  };
  let startSD: StateDict | undefined;
  let resumeSD: StateDict | undefined;
  if (values.resume) {
    let r;
    try {
      r = readSafetensors(await Deno.readFile(resumePath));
      startSD = readSafetensors(await Deno.readFile(out)).tensors;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new InvalidArgumentError(
          `--resume: ${out} or ${resumePath} not found`,
          "start without --resume",
        );
      }
      throw e;
    }
    state = JSON.parse(r.metadata.repmlp_edge_resume);
    resumeSD = r.tensors;
    if (state.preset !== presetName || state.dataset !== datasetSpec) {
      throw new InvalidArgumentError(
        `--resume: ${resumePath} was made by --model ${state.preset} --dataset ${state.dataset}`,
        "use the same preset and dataset, or start a new --out",
      );
    }
  }
  if (values.init && !values.resume) {
    const r = readSafetensors(await Deno.readFile(values.init));
    const rec = r.metadata.repmlp_edge_model ? JSON.parse(r.metadata.repmlp_edge_model) : null;
    if (!rec || rec.arch !== desc.arch || JSON.stringify(rec.kwargs) !== JSON.stringify(desc.kwargs)) {
      throw new InvalidArgumentError(
        `--init ${values.init} is not a ${desc.arch} checkpoint with the preset's kwargs`,
        "use a checkpoint written by `deno task train` with the same --model",
      );
    }
    startSD = r.tensors;
  }
  const graph = new TrainGraph(desc, startSD, seed);
  const opt = new SGD(0.9, preset.weightDecay);
  const head = embed
    ? new AMSoftmax(data.classes.length, Number(kwargs.embedding_dim ?? 128), 30, 0.35, seed)
    : null;
  if (resumeSD) {
    opt.load(graph, resumeSD);
    const hw = resumeSD.get("amsoftmax.weight");
    if (head && hw) head.weight.assign(tf.tensor(hw.data as Float32Array, head.weight.shape));
  }
  const extra = head ? [head.weight] : [];
  const loss: LossFn = head ? (o, y) => head.loss(o, y) : (o, y) => crossEntropy(o, y, preset.labelSmoothing);

  const stepsPerEpoch = Math.floor(train.n / batch);
  if (stepsPerEpoch < 1) {
    throw new InvalidArgumentError(`the dataset has ${train.n} training images, fewer than --batch ${batch}`);
  }
  const totalSteps = Math.min(epochs * stepsPerEpoch, maxSteps ?? Infinity);
  // Short runs (smoke tests, --max-steps) get a proportionally short warm-up.
  const warmup = Math.min(preset.warmupSteps, Math.ceil(totalSteps / 10));
  const nParams = [...graph.vars.values()].reduce((a, v) => a + v.size, 0);
  const header = {
    event: "start",
    time: new Date().toISOString(),
    preset: presetName,
    arch: desc.arch,
    kwargs: desc.kwargs,
    params_train: nParams,
    dataset: datasetSpec,
    train_images: train.n,
    test_images: test?.n ?? 0,
    backend,
    batch,
    lr: baseLr,
    epochs,
    max_seconds: maxSeconds ?? null,
    max_steps: maxSteps ?? null,
    resumed_at_step: state.step,
    init: values.init ?? null,
  };
  await Deno.writeTextFile(logPath, JSON.stringify(header) + "\n", { append: values.resume });
  const log = (o: Record<string, unknown>) =>
    Deno.writeTextFile(logPath, JSON.stringify(o) + "\n", { append: true });
  console.log(
    `train    ${presetName}: ${desc.arch} (${
      (nParams / 1e6).toFixed(2)
    } M train-time params) on ${datasetSpec} ` +
      `(${train.n} images), backend ${backend}, batch ${batch}, ${epochs} epochs${
        maxSeconds ? `, ≤ ${maxSeconds} s` : ""
      }${state.step ? `, resuming at step ${state.step}` : ""}`,
  );

  const meta = (extraTraining: Record<string, unknown>) => ({
    repmlp_edge_model: JSON.stringify({ arch: desc.arch, kwargs: desc.kwargs, input: desc.input }),
    repmlp_edge_meta: JSON.stringify({
      task: embed ? "face-embedding" : "classification",
      ...(embed ? { note: "synthetic-identity demo: trained only on procedurally generated faces" } : {}),
      preprocess: { layout: "NCHW", input: desc.input, mean: data.mean, std: data.std },
      ...(embed ? {} : { labels: data.classes }),
      training: {
        preset: presetName,
        dataset: datasetSpec,
        epochs,
        batch,
        lr: baseLr,
        backend,
        steps: state.step,
        seconds: Math.round(state.elapsed),
        ...(values.init ? { init: values.init.split("/").pop() } : {}),
        ...extraTraining,
      },
    }),
  });

  let lastMetrics: Record<string, unknown> = {};
  async function save(final = false) {
    const sd = await graph.stateDict();
    const tmp = `${out}.tmp`;
    await Deno.writeFile(tmp, writeSafetensors(sd, meta(lastMetrics)));
    await Deno.rename(tmp, out);
    const rs = await opt.state(graph);
    if (head) {
      rs.set("amsoftmax.weight", {
        dtype: "float32",
        shape: head.weight.shape,
        data: new Float32Array(await head.weight.data()),
      });
    }
    await Deno.writeFile(
      `${resumePath}.tmp`,
      writeSafetensors(rs, { repmlp_edge_resume: JSON.stringify(state) }),
    );
    await Deno.rename(`${resumePath}.tmp`, resumePath);
    const metricSeries = Object.entries(state.metrics).map(([name, pts]) => ({ name, pts }));
    await Deno.writeTextFile(
      svgPath,
      curvesSvg(`${presetName} on ${datasetSpec} (${backend})`, state.loss, metricSeries),
    );
    if (final) console.log(`saved    ${out} (+ .log.jsonl, .curves.svg, .resume.safetensors)`);
  }

  async function evaluate(): Promise<Record<string, number>> {
    if (!test) return {};
    const predict = (x: Float32Array, shape: number[]) => predictBatch(graph, x, shape);
    const { out: y, dim } = await predictSet(test, predict, data, 256);
    if (!embed) return { test_top1: top1(y, dim, test.labels) };
    const v = verification(y, dim, test.labels);
    return {
      auc: v.auc,
      tar_at_far_1e3: v.tarAtFar["0.001"],
      tar_at_far_1e2: v.tarAtFar["0.01"],
      best_acc: v.bestAccuracy,
      threshold: v.threshold,
    };
  }

  let stop = false;
  const onSig = () => {
    if (stop) Deno.exit(130);
    stop = true;
    console.error("\ninterrupt: saving a resumable checkpoint (Ctrl-C again to abort)");
  };
  Deno.addSignalListener("SIGINT", onSig);
  if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", onSig);

  const tty = !values.quiet && Deno.stdout.isTerminal();
  const bar = new cliProgress.SingleBar({
    format: "epoch {ep} [{bar}] {value}/{total} | loss {loss} | {ips} img/s | lr {lr} | ETA {eta_formatted}",
    hideCursor: true,
    etaBuffer: 50,
  }, cliProgress.Presets.shades_classic);

  const t0 = performance.now() - state.elapsed * 1000;
  let lastSave = performance.now();
  const progress = () => {
    const byStep = state.step / totalSteps;
    return maxSeconds ? Math.max(byStep, state.elapsed / maxSeconds) : byStep;
  };
  const [C, H, W] = [train.c, train.h, train.w];
  const aug = { pad: preset.pad, flip: preset.flip, mean: data.mean, std: data.std };
  let running = 0;
  outer: while (state.epoch < epochs) {
    const perm = permutation(train.n, rng(seed * 7919 + state.epoch));
    const r = rng(seed * 104729 + state.epoch * 31 + state.stepInEpoch);
    if (tty) {
      bar.start(stepsPerEpoch, state.stepInEpoch, {
        ep: `${state.epoch + 1}/${epochs}`,
        loss: "-",
        ips: "-",
        lr: "-",
      });
    }
    let winStart = performance.now(), winImgs = 0;
    for (; state.stepInEpoch < stepsPerEpoch; state.stepInEpoch++) {
      if (stop || progress() >= 1) break outer;
      const lr = maxSeconds
        ? cosineLR(Math.floor(progress() * totalSteps), totalSteps, baseLr, warmup)
        : cosineLR(state.step, totalSteps, baseLr, warmup);
      const idx = perm.subarray(state.stepInEpoch * batch, (state.stepInEpoch + 1) * batch);
      const { x, y } = makeBatch(train, idx, aug, r);
      const res = await trainStep(graph, opt, extra, x, [batch, C, H, W], y, loss, lr);
      if (!Number.isFinite(res.loss)) {
        throw new InvalidArgumentError(`loss became ${res.loss} at step ${state.step}`, "lower --lr");
      }
      state.step++;
      state.elapsed = (performance.now() - t0) / 1000;
      running = running ? 0.98 * running + 0.02 * res.loss : res.loss;
      winImgs += batch;
      const ips = winImgs / ((performance.now() - winStart) / 1000);
      if (state.step % 10 === 0) {
        state.loss.push({ x: state.epoch + state.stepInEpoch / stepsPerEpoch, y: res.loss });
        await log({
          event: "step",
          step: state.step,
          epoch: state.epoch,
          loss: res.loss,
          lr,
          ips: +ips.toFixed(1),
        });
      }
      if (tty) {
        bar.update(state.stepInEpoch + 1, {
          loss: running.toFixed(4),
          ips: ips.toFixed(0),
          lr: lr.toFixed(4),
        });
      } else if (!values.quiet && state.step % 50 === 0) {
        console.log(
          `epoch ${state.epoch + 1}/${epochs} step ${state.stepInEpoch + 1}/${stepsPerEpoch} loss ${
            running.toFixed(4)
          } ${ips.toFixed(0)} img/s lr ${lr.toFixed(4)} elapsed ${state.elapsed.toFixed(0)} s`,
        );
      }
      if (performance.now() - winStart > 30000) winStart = performance.now(), winImgs = 0;
      if ((performance.now() - lastSave) / 1000 > ckptEvery) {
        state.stepInEpoch++; // this step is done
        await save();
        state.stepInEpoch--;
        lastSave = performance.now();
      }
    }
    if (tty) bar.stop();
    const m = await evaluate();
    lastMetrics = m;
    for (const [k, v] of Object.entries(m)) {
      if (k === "threshold") continue;
      (state.metrics[k] ??= []).push({ x: state.epoch + 1, y: v as number });
    }
    await log({ event: "epoch", epoch: state.epoch + 1, step: state.step, elapsed: state.elapsed, ...m });
    console.log(
      `epoch ${state.epoch + 1}/${epochs} done in ${state.elapsed.toFixed(0)} s: loss ${running.toFixed(4)} ${
        Object.entries(m).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(" ")
      }`,
    );
    state.epoch++;
    state.stepInEpoch = 0;
    await save();
    lastSave = performance.now();
  }
  if (tty) bar.stop();
  const finished = state.epoch >= epochs || progress() >= 1;
  if (finished && state.epoch < epochs) {
    // Time budget ended inside an epoch: evaluate what we have.
    lastMetrics = await evaluate();
    await log({ event: "final_eval", step: state.step, ...lastMetrics });
    console.log(
      `final    ${Object.entries(lastMetrics).map(([k, v]) => `${k} ${(v as number).toFixed(4)}`).join(" ")}`,
    );
  }
  await save(true);
  await log({
    event: finished ? "done" : "interrupted",
    step: state.step,
    elapsed: state.elapsed,
    ...lastMetrics,
  });
  if (!finished) console.log(`stopped at step ${state.step}; continue with the same command plus --resume`);
  graph.dispose();
  opt.dispose();
});
