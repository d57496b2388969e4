/**
 * The training loop behind `deno task train`: trains a preset with tfjs and writes a training-time
 * checkpoint with the official PyTorch key names (so `deno task convert` takes it unchanged), a
 * JSON-lines log, a training-curves SVG and a resume file beside it. Interruptible (an AbortSignal
 * stops it after the current step with a resumable checkpoint) and resumable.
 */
import * as tf from "@tensorflow/tfjs";
import { buildModel, type ModelDesc } from "../../runtime/src/arch/mod.ts";
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import { readSafetensors } from "../../runtime/src/io/safetensors.ts";
import { rng } from "../../runtime/src/random.ts";
import type { StateDict } from "../../runtime/src/tensor.ts";
import { makeBatch, permutation } from "../data/augment.ts";
import { type BackendName, initBackend, webgpuNote } from "./tfjs_backend.ts";
import { curvesSvg, type Pt } from "./curves.ts";
import { type Dataset, loadDataset } from "./datasets.ts";
import { predictSet, top1, verification } from "./evaluate.ts";
import { TrainGraph } from "./tfjs_graph.ts";
import { getPreset, type Preset } from "./presets.ts";
import { readResume, resumePath, writeResume } from "./resume.ts";
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
    const r = await readResume<ResumeState>(o.out);
    state = r.state;
    startSD = r.weights;
    resumeSD = r.optimiser;
    if (state.preset !== o.preset || state.dataset !== datasetSpec) {
      throw new InvalidArgumentError(
        `--resume: ${resumePath(o.out)} was made by --model ${state.preset} --dataset ${state.dataset}`,
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
  const run = await FitRun.start(o);
  try {
    while (run.state.epoch < run.epochs) {
      if (!await run.trainEpoch()) break;
      await run.endEpoch();
    }
    return await run.finish();
  } finally {
    run.dispose();
  }
}

/** One training run: model, optimiser, schedule and progress (what the resume file holds). */
class FitRun {
  readonly say: (line: string) => void;
  readonly datasetSpec: string;
  readonly epochs: number;
  readonly batch: number;
  readonly baseLr: number;
  readonly seed: number;
  readonly stepsPerEpoch: number;
  readonly totalSteps: number;
  readonly warmup: number;
  readonly extra: tf.Variable[];
  readonly loss: LossFn;
  readonly t0: number;
  lastSave = performance.now();
  lastMetrics: Record<string, number> = {};
  running = 0;

  private constructor(
    readonly o: FitOptions,
    readonly preset: Preset,
    readonly data: Dataset,
    readonly desc: ModelDesc,
    readonly backend: "webgpu" | "wasm" | "cpu",
    readonly state: ResumeState,
    readonly graph: TrainGraph,
    readonly opt: SGD,
    readonly head: AMSoftmax | null,
  ) {
    this.say = o.log ?? ((l: string) => console.log(l));
    this.datasetSpec = o.dataset ?? preset.dataset;
    this.epochs = o.epochs ?? preset.epochs;
    this.batch = o.batch ?? preset.batch;
    this.baseLr = o.lr ?? preset.lr;
    this.seed = o.seed ?? 0;
    this.extra = head ? [head.weight] : [];
    this.loss = head ? (x, y) => head.loss(x, y) : (x, y) => crossEntropy(x, y, preset.labelSmoothing);
    this.stepsPerEpoch = Math.floor(data.train.n / this.batch);
    if (this.stepsPerEpoch < 1) {
      throw new InvalidArgumentError(
        `the dataset has ${data.train.n} training images, fewer than --batch ${this.batch}`,
      );
    }
    this.totalSteps = Math.min(this.epochs * this.stepsPerEpoch, o.maxSteps ?? Infinity);
    // Short runs (smoke tests, --max-steps) get a proportionally short warm-up.
    this.warmup = Math.min(preset.warmupSteps, Math.ceil(this.totalSteps / 10));
    this.t0 = performance.now() - state.elapsed * 1000;
  }

  /** Backend, dataset, model and starting point; writes the log header. */
  static async start(o: FitOptions): Promise<FitRun> {
    const say = o.log ?? ((l: string) => console.log(l));
    const preset = getPreset(o.preset);
    const datasetSpec = o.dataset ?? preset.dataset, seed = o.seed ?? 0;
    const backend = await initBackend(o.backend ?? "auto");
    if ((o.backend ?? "auto") === "auto" && webgpuNote) say(`note     ${webgpuNote}`);
    const data = await loadDataset(datasetSpec, { seed, task: preset.task });
    const { desc, kwargs } = describe(preset, data, o.kwargs);
    const { state, startSD, resumeSD } = await startingPoint(o, datasetSpec, desc);
    const graph = new TrainGraph(desc, startSD, seed);
    const opt = new SGD(0.9, preset.weightDecay);
    const head = preset.task === "embed"
      ? new AMSoftmax(data.classes.length, Number(kwargs.embedding_dim ?? 128), 30, 0.35, seed)
      : null;
    if (resumeSD) {
      opt.load(graph, resumeSD);
      const hw = resumeSD.get("amsoftmax.weight");
      if (head && hw) head.weight.assign(tf.tensor(hw.data as Float32Array, head.weight.shape));
    }
    const run = new FitRun(o, preset, data, desc, backend, state, graph, opt, head);
    await run.writeHeader();
    return run;
  }

  dispose() {
    this.graph.dispose();
    this.opt.dispose();
  }

  log(e: Record<string, unknown>): Promise<void> {
    return Deno.writeTextFile(`${this.o.out}.log.jsonl`, JSON.stringify(e) + "\n", { append: true });
  }

  async writeHeader() {
    const { o, desc, data, state } = this;
    const nParams = [...this.graph.vars.values()].reduce((a, v) => a + v.size, 0);
    const header = {
      event: "start",
      time: new Date().toISOString(),
      preset: o.preset,
      arch: desc.arch,
      kwargs: desc.kwargs,
      params_train: nParams,
      dataset: this.datasetSpec,
      train_images: data.train.n,
      test_images: data.test?.n ?? 0,
      backend: this.backend,
      batch: this.batch,
      lr: this.baseLr,
      epochs: this.epochs,
      max_seconds: o.maxSeconds ?? null,
      max_steps: o.maxSteps ?? null,
      resumed_at_step: state.step,
      init: o.init ?? null,
    };
    await Deno.writeTextFile(`${o.out}.log.jsonl`, JSON.stringify(header) + "\n", { append: !!o.resume });
    this.say(
      `train    ${o.preset}: ${desc.arch} (${
        (nParams / 1e6).toFixed(2)
      } M train-time params) on ${this.datasetSpec} ` +
        `(${data.train.n} images), backend ${this.backend}, batch ${this.batch}, ${this.epochs} epochs${
          o.maxSeconds ? `, ≤ ${o.maxSeconds} s` : ""
        }${state.step ? `, resuming at step ${state.step}` : ""}`,
    );
  }

  /** Bundle-ready metadata: architecture record, preprocessing, labels, training summary. */
  meta(): Record<string, string> {
    const { o, desc, data, state } = this, embed = this.preset.task === "embed";
    return {
      repmlp_edge_model: JSON.stringify({ arch: desc.arch, kwargs: desc.kwargs, input: desc.input }),
      repmlp_edge_meta: JSON.stringify({
        task: embed ? "face-embedding" : "classification",
        ...(embed ? { note: "synthetic-identity demo: trained only on procedurally generated faces" } : {}),
        preprocess: { layout: "NCHW", input: desc.input, mean: data.mean, std: data.std },
        ...(embed ? {} : { labels: data.classes }),
        training: {
          preset: o.preset,
          dataset: this.datasetSpec,
          epochs: this.epochs,
          batch: this.batch,
          lr: this.baseLr,
          backend: this.backend,
          steps: state.step,
          seconds: Math.round(state.elapsed),
          ...(o.init ? { init: o.init.split("/").pop() } : {}),
          ...this.lastMetrics,
        },
      }),
    };
  }

  /** Checkpoint, resume file and curves, each written to a temp file then renamed. */
  async save(final = false) {
    const { out } = this.o;
    const weights = await this.graph.stateDict();
    const rs = await this.opt.state(this.graph);
    if (this.head) {
      const w = this.head.weight;
      rs.set("amsoftmax.weight", {
        dtype: "float32",
        shape: w.shape,
        data: new Float32Array(await w.data()),
      });
    }
    await writeResume(out, weights, this.meta(), rs, this.state);
    const series = Object.entries(this.state.metrics).map(([name, pts]) => ({ name, pts }));
    const title = `${this.o.preset} on ${this.datasetSpec} (${this.backend})`;
    await Deno.writeTextFile(`${out}.curves.svg`, curvesSvg(title, this.state.loss, series));
    if (final) this.say(`saved    ${out} (+ .log.jsonl, .curves.svg, .resume.safetensors)`);
  }

  /** Test top-1 (classifiers) or verification metrics (embeddings) on the held-out split. */
  async evaluate(): Promise<Record<string, number>> {
    const test = this.data.test;
    if (!test) return {};
    const predict = (x: Float32Array, shape: number[]) => predictBatch(this.graph, x, shape);
    const { out: y, dim } = await predictSet(test, predict, this.data, 256);
    if (this.preset.task !== "embed") return { test_top1: top1(y, dim, test.labels) };
    const v = verification(y, dim, test.labels);
    return {
      auc: v.auc,
      tar_at_far_1e3: v.tarAtFar["0.001"],
      tar_at_far_1e2: v.tarAtFar["0.01"],
      best_acc: v.bestAccuracy,
      threshold: v.threshold,
    };
  }

  /** Fraction of the budget used: steps, or wall time when --max-seconds is set. */
  progress(): number {
    const byStep = this.state.step / this.totalSteps, maxSeconds = this.o.maxSeconds;
    return maxSeconds ? Math.max(byStep, this.state.elapsed / maxSeconds) : byStep;
  }

  /** The rest of the current epoch; false when the budget ended or the signal stopped it. */
  async trainEpoch(): Promise<boolean> {
    const { o, state, data, batch, stepsPerEpoch, seed } = this, train = data.train;
    const perm = permutation(train.n, rng(seed * 7919 + state.epoch));
    const r = rng(seed * 104729 + state.epoch * 31 + state.stepInEpoch);
    const aug = { pad: this.preset.pad, flip: this.preset.flip, mean: data.mean, std: data.std };
    o.onProgress?.({
      kind: "epoch-start",
      epoch: state.epoch,
      epochs: this.epochs,
      stepInEpoch: state.stepInEpoch,
      stepsPerEpoch,
    });
    let winStart = performance.now(), winImgs = 0;
    for (; state.stepInEpoch < stepsPerEpoch; state.stepInEpoch++) {
      if (o.signal?.aborted || this.progress() >= 1) return false;
      const lr = o.maxSeconds
        ? cosineLR(Math.floor(this.progress() * this.totalSteps), this.totalSteps, this.baseLr, this.warmup)
        : cosineLR(state.step, this.totalSteps, this.baseLr, this.warmup);
      const idx = perm.subarray(state.stepInEpoch * batch, (state.stepInEpoch + 1) * batch);
      const { x, y } = makeBatch(train, idx, aug, r);
      const shape = [batch, train.c, train.h, train.w];
      const res = await trainStep(this.graph, this.opt, this.extra, x, shape, y, this.loss, lr);
      if (!Number.isFinite(res.loss)) {
        throw new InvalidArgumentError(`loss became ${res.loss} at step ${state.step}`, "lower --lr");
      }
      state.step++;
      state.elapsed = (performance.now() - this.t0) / 1000;
      this.running = this.running ? 0.98 * this.running + 0.02 * res.loss : res.loss;
      winImgs += batch;
      const ips = winImgs / ((performance.now() - winStart) / 1000);
      await this.report(res.loss, lr, ips);
      if (performance.now() - winStart > 30000) winStart = performance.now(), winImgs = 0;
      if ((performance.now() - this.lastSave) / 1000 > (o.checkpointSeconds ?? 300)) {
        state.stepInEpoch++; // this step is done
        await this.save();
        state.stepInEpoch--;
        this.lastSave = performance.now();
      }
    }
    return true;
  }

  /** Per-step log line (every 10 steps), curve point, and progress (bar or every-50-steps line). */
  async report(loss: number, lr: number, ips: number) {
    const { state, stepsPerEpoch } = this;
    if (state.step % 10 === 0) {
      state.loss.push({ x: state.epoch + state.stepInEpoch / stepsPerEpoch, y: loss });
      await this.log({ event: "step", step: state.step, epoch: state.epoch, loss, lr, ips: +ips.toFixed(1) });
    }
    if (this.o.onProgress) {
      this.o.onProgress({ kind: "step", stepInEpoch: state.stepInEpoch + 1, loss: this.running, ips, lr });
    } else if (state.step % 50 === 0) {
      this.say(
        `epoch ${state.epoch + 1}/${this.epochs} step ${state.stepInEpoch + 1}/${stepsPerEpoch} loss ${
          this.running.toFixed(4)
        } ${ips.toFixed(0)} img/s lr ${lr.toFixed(4)} elapsed ${state.elapsed.toFixed(0)} s`,
      );
    }
  }

  /** Evaluate, log and save at the end of an epoch. */
  async endEpoch() {
    const { state } = this;
    this.o.onProgress?.({ kind: "epoch-end" });
    const m = await this.evaluate();
    this.lastMetrics = m;
    for (const [k, v] of Object.entries(m)) {
      if (k === "threshold") continue;
      (state.metrics[k] ??= []).push({ x: state.epoch + 1, y: v });
    }
    await this.log({
      event: "epoch",
      epoch: state.epoch + 1,
      step: state.step,
      elapsed: state.elapsed,
      ...m,
    });
    this.say(
      `epoch ${state.epoch + 1}/${this.epochs} done in ${state.elapsed.toFixed(0)} s: loss ${
        this.running.toFixed(4)
      } ${Object.entries(m).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(" ")}`,
    );
    state.epoch++;
    state.stepInEpoch = 0;
    await this.save();
    this.lastSave = performance.now();
  }

  /** Final evaluation when the budget ended inside an epoch, final save, done/interrupted record. */
  async finish(): Promise<FitResult> {
    const { state } = this;
    this.o.onProgress?.({ kind: "epoch-end" });
    const finished = state.epoch >= this.epochs || this.progress() >= 1;
    if (finished && state.epoch < this.epochs) {
      this.lastMetrics = await this.evaluate();
      await this.log({ event: "final_eval", step: state.step, ...this.lastMetrics });
      this.say(
        `final    ${Object.entries(this.lastMetrics).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(" ")}`,
      );
    }
    await this.save(true);
    const event = finished ? "done" : "interrupted";
    await this.log({ event, step: state.step, elapsed: state.elapsed, ...this.lastMetrics });
    const { desc, backend, lastMetrics: metrics } = this;
    return { desc, backend, step: state.step, epoch: state.epoch, finished, metrics };
  }
}
