/**
 * The training loop behind `deno task train`: trains a preset with tfjs and writes a training-time
 * checkpoint with the official PyTorch key names (so `deno task convert` takes it unchanged), a
 * JSON-lines log, a training-curves SVG and a resume file beside it. Interruptible (an AbortSignal
 * stops it after the current step with a resumable checkpoint) and resumable.
 */
import * as tf from "@tensorflow/tfjs";
import { buildModel, type ModelDesc } from "../../runtime/src/arch/mod.ts";
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import { readSafetensors, writeSafetensors } from "../../runtime/src/io/safetensors.ts";
import { rng } from "../../runtime/src/random.ts";
import type { StateDict } from "../../runtime/src/tensor.ts";
import { makeBatch, permutation } from "../data/augment.ts";
import { type BackendName, initBackend, webgpuNote } from "./tfjs_backend.ts";
import { curvesSvg, type Pt } from "./curves.ts";
import { type Dataset, loadDataset } from "./datasets.ts";
import { predictSet, top1, verification } from "./evaluate.ts";
import { TrainGraph } from "./tfjs_graph.ts";
import { getPreset, type Preset } from "./presets.ts";
import { AMSoftmax, cosineLR, crossEntropy, type LossFn, predictBatch, SGD, trainStep } from "./trainer.ts";

/** What to train and where to write it. Unset numbers come from the preset. */
export interface FitOptions {
  /** Preset name (architecture + recipe), see TRAIN_PRESETS. */
  preset: string;
  /** Checkpoint path; `<out>.log.jsonl`, `<out>.curves.svg`, `<out>.resume.safetensors` go beside it. */
  out: string;
  /** Dataset spec (see datasets.ts); default the preset's. */
  dataset?: string;
  epochs?: number;
  /** Wall-clock budget: the cosine schedule is compressed to end within it. */
  maxSeconds?: number;
  /** Stop after this many optimiser steps (the schedule is fitted to them). */
  maxSteps?: number;
  batch?: number;
  lr?: number;
  /** Default 0. */
  seed?: number;
  /** Default "auto" (webgpu → wasm → cpu). */
  backend?: BackendName;
  /** Continue from `<out>` + `<out>.resume.safetensors` (same preset and dataset). */
  resume?: boolean;
  /** Start from the weights of a checkpoint written by a run of the same preset (fine-tuning). */
  init?: string;
  /** Overrides of the preset's architecture kwargs. */
  kwargs?: Record<string, unknown>;
  /** Save every this many seconds as well as after every epoch. Default 300. */
  checkpointSeconds?: number;
  /** Aborting stops the run after the current step and saves a resumable checkpoint. */
  signal?: AbortSignal;
  /** Human-readable progress lines (default console.log). */
  log?: (line: string) => void;
  /** Per-step progress (e.g. a progress bar); when given, the every-50-steps lines are not logged. */
  onProgress?: (p: FitProgress) => void;
}

/** Progress events of {@link fit}. */
export type FitProgress =
  | { kind: "epoch-start"; epoch: number; epochs: number; stepInEpoch: number; stepsPerEpoch: number }
  | { kind: "step"; stepInEpoch: number; loss: number; ips: number; lr: number }
  | { kind: "epoch-end" };

/** Outcome of {@link fit}. */
export interface FitResult {
  desc: ModelDesc;
  backend: "webgpu" | "wasm" | "cpu";
  /** Optimiser steps done in total (across resumes). */
  step: number;
  epoch: number;
  /** False when stopped by the signal (continue with `resume: true`). */
  finished: boolean;
  /** Last evaluation (test top-1, or verification metrics for embedding presets). */
  metrics: Record<string, number>;
}

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

/** The preset's description, sized to the dataset (classes, channels, square image size). */
function describe(preset: Preset, data: Dataset, over: Record<string, unknown> = {}) {
  const embed = preset.task === "embed", train = data.train;
  const kwargs = { ...preset.kwargs, ...over };
  if (!embed) kwargs.num_class = data.classes.length;
  if (train.c !== (kwargs.in_channels ?? (embed ? 3 : 1))) kwargs.in_channels = train.c;
  if (train.h !== train.w) throw new InvalidArgumentError(`images must be square, got ${train.h}×${train.w}`);
  kwargs.image_size = train.h;
  return { desc: buildModel(preset.arch, kwargs), kwargs };
}

/** Starting point: fresh, `--resume` (weights + optimiser + progress) or `--init` (weights only). */
async function startingPoint(o: FitOptions, datasetSpec: string, desc: ModelDesc) {
  const resumePath = `${o.out}.resume.safetensors`;
  let state: ResumeState = {
    preset: o.preset,
    dataset: datasetSpec,
    epoch: 0,
    stepInEpoch: 0,
    step: 0,
    elapsed: 0,
    loss: [],
    metrics: {},
  };
  let startSD: StateDict | undefined, resumeSD: StateDict | undefined;
  if (o.resume) {
    let r;
    try {
      r = readSafetensors(await Deno.readFile(resumePath));
      startSD = readSafetensors(await Deno.readFile(o.out)).tensors;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new InvalidArgumentError(
          `--resume: ${o.out} or ${resumePath} not found`,
          "start without --resume",
        );
      }
      throw e;
    }
    state = JSON.parse(r.metadata.repmlp_edge_resume);
    resumeSD = r.tensors;
    if (state.preset !== o.preset || state.dataset !== datasetSpec) {
      throw new InvalidArgumentError(
        `--resume: ${resumePath} was made by --model ${state.preset} --dataset ${state.dataset}`,
        "use the same preset and dataset, or start a new --out",
      );
    }
  }
  if (o.init && !o.resume) {
    const r = readSafetensors(await Deno.readFile(o.init));
    const rec = r.metadata.repmlp_edge_model ? JSON.parse(r.metadata.repmlp_edge_model) : null;
    if (!rec || rec.arch !== desc.arch || JSON.stringify(rec.kwargs) !== JSON.stringify(desc.kwargs)) {
      throw new InvalidArgumentError(
        `--init ${o.init} is not a ${desc.arch} checkpoint with the preset's kwargs`,
        "use a checkpoint written by `deno task train` with the same --model",
      );
    }
    startSD = r.tensors;
  }
  return { state, startSD, resumeSD };
}

/** Train a preset (see {@link FitOptions}); resolves when the schedule ends or the signal stopped it. */
export async function fit(o: FitOptions): Promise<FitResult> {
  const say = o.log ?? ((l: string) => console.log(l));
  const preset = getPreset(o.preset);
  const datasetSpec = o.dataset ?? preset.dataset;
  const epochs = o.epochs ?? preset.epochs, batch = o.batch ?? preset.batch, baseLr = o.lr ?? preset.lr;
  const seed = o.seed ?? 0, ckptEvery = o.checkpointSeconds ?? 300, maxSeconds = o.maxSeconds;
  const out = o.out, logPath = `${out}.log.jsonl`;

  const backend = await initBackend(o.backend ?? "auto");
  if ((o.backend ?? "auto") === "auto" && webgpuNote) say(`note     ${webgpuNote}`);
  const data = await loadDataset(datasetSpec, { seed, task: preset.task });
  const { train, test } = data;
  const embed = preset.task === "embed";
  const { desc, kwargs } = describe(preset, data, o.kwargs);
  const { state, startSD, resumeSD } = await startingPoint(o, datasetSpec, desc);

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
  const loss: LossFn = head ? (x, y) => head.loss(x, y) : (x, y) => crossEntropy(x, y, preset.labelSmoothing);

  const stepsPerEpoch = Math.floor(train.n / batch);
  if (stepsPerEpoch < 1) {
    throw new InvalidArgumentError(`the dataset has ${train.n} training images, fewer than --batch ${batch}`);
  }
  const totalSteps = Math.min(epochs * stepsPerEpoch, o.maxSteps ?? Infinity);
  // Short runs (smoke tests, --max-steps) get a proportionally short warm-up.
  const warmup = Math.min(preset.warmupSteps, Math.ceil(totalSteps / 10));
  const nParams = [...graph.vars.values()].reduce((a, v) => a + v.size, 0);
  const header = {
    event: "start",
    time: new Date().toISOString(),
    preset: o.preset,
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
    max_steps: o.maxSteps ?? null,
    resumed_at_step: state.step,
    init: o.init ?? null,
  };
  await Deno.writeTextFile(logPath, JSON.stringify(header) + "\n", { append: !!o.resume });
  const log = (e: Record<string, unknown>) =>
    Deno.writeTextFile(logPath, JSON.stringify(e) + "\n", { append: true });
  say(
    `train    ${o.preset}: ${desc.arch} (${
      (nParams / 1e6).toFixed(2)
    } M train-time params) on ${datasetSpec} ` +
      `(${train.n} images), backend ${backend}, batch ${batch}, ${epochs} epochs${
        maxSeconds ? `, ≤ ${maxSeconds} s` : ""
      }${state.step ? `, resuming at step ${state.step}` : ""}`,
  );

  const meta = (metrics: Record<string, unknown>) => ({
    repmlp_edge_model: JSON.stringify({ arch: desc.arch, kwargs: desc.kwargs, input: desc.input }),
    repmlp_edge_meta: JSON.stringify({
      task: embed ? "face-embedding" : "classification",
      ...(embed ? { note: "synthetic-identity demo: trained only on procedurally generated faces" } : {}),
      preprocess: { layout: "NCHW", input: desc.input, mean: data.mean, std: data.std },
      ...(embed ? {} : { labels: data.classes }),
      training: {
        preset: o.preset,
        dataset: datasetSpec,
        epochs,
        batch,
        lr: baseLr,
        backend,
        steps: state.step,
        seconds: Math.round(state.elapsed),
        ...(o.init ? { init: o.init.split("/").pop() } : {}),
        ...metrics,
      },
    }),
  });

  let lastMetrics: Record<string, number> = {};
  /** Checkpoint, resume file and curves, each written to a temp file then renamed. */
  async function save(final = false) {
    await Deno.writeFile(`${out}.tmp`, writeSafetensors(await graph.stateDict(), meta(lastMetrics)));
    await Deno.rename(`${out}.tmp`, out);
    const rs = await opt.state(graph);
    if (head) {
      const data = new Float32Array(await head.weight.data());
      rs.set("amsoftmax.weight", { dtype: "float32", shape: head.weight.shape, data });
    }
    const resumePath = `${out}.resume.safetensors`;
    await Deno.writeFile(
      `${resumePath}.tmp`,
      writeSafetensors(rs, { repmlp_edge_resume: JSON.stringify(state) }),
    );
    await Deno.rename(`${resumePath}.tmp`, resumePath);
    const series = Object.entries(state.metrics).map(([name, pts]) => ({ name, pts }));
    await Deno.writeTextFile(
      `${out}.curves.svg`,
      curvesSvg(`${o.preset} on ${datasetSpec} (${backend})`, state.loss, series),
    );
    if (final) say(`saved    ${out} (+ .log.jsonl, .curves.svg, .resume.safetensors)`);
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

  const t0 = performance.now() - state.elapsed * 1000;
  let lastSave = performance.now();
  const progress = () => {
    const byStep = state.step / totalSteps;
    return maxSeconds ? Math.max(byStep, state.elapsed / maxSeconds) : byStep;
  };
  const [C, H, W] = [train.c, train.h, train.w];
  const aug = { pad: preset.pad, flip: preset.flip, mean: data.mean, std: data.std };
  let running = 0;
  try {
    outer: while (state.epoch < epochs) {
      const perm = permutation(train.n, rng(seed * 7919 + state.epoch));
      const r = rng(seed * 104729 + state.epoch * 31 + state.stepInEpoch);
      o.onProgress?.({
        kind: "epoch-start",
        epoch: state.epoch,
        epochs,
        stepInEpoch: state.stepInEpoch,
        stepsPerEpoch,
      });
      let winStart = performance.now(), winImgs = 0;
      for (; state.stepInEpoch < stepsPerEpoch; state.stepInEpoch++) {
        if (o.signal?.aborted || progress() >= 1) break outer;
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
        if (o.onProgress) {
          o.onProgress({ kind: "step", stepInEpoch: state.stepInEpoch + 1, loss: running, ips, lr });
        } else if (state.step % 50 === 0) {
          say(
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
      o.onProgress?.({ kind: "epoch-end" });
      const m = await evaluate();
      lastMetrics = m;
      for (const [k, v] of Object.entries(m)) {
        if (k === "threshold") continue;
        (state.metrics[k] ??= []).push({ x: state.epoch + 1, y: v });
      }
      await log({ event: "epoch", epoch: state.epoch + 1, step: state.step, elapsed: state.elapsed, ...m });
      say(
        `epoch ${state.epoch + 1}/${epochs} done in ${state.elapsed.toFixed(0)} s: loss ${
          running.toFixed(4)
        } ${Object.entries(m).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(" ")}`,
      );
      state.epoch++;
      state.stepInEpoch = 0;
      await save();
      lastSave = performance.now();
    }
    o.onProgress?.({ kind: "epoch-end" });
    const finished = state.epoch >= epochs || progress() >= 1;
    if (finished && state.epoch < epochs) {
      // Time budget ended inside an epoch: evaluate what we have.
      lastMetrics = await evaluate();
      await log({ event: "final_eval", step: state.step, ...lastMetrics });
      say(`final    ${Object.entries(lastMetrics).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(" ")}`);
    }
    await save(true);
    await log({
      event: finished ? "done" : "interrupted",
      step: state.step,
      elapsed: state.elapsed,
      ...lastMetrics,
    });
    return { desc, backend, step: state.step, epoch: state.epoch, finished, metrics: lastMetrics };
  } finally {
    graph.dispose();
    opt.dispose();
  }
}
