/**
 * The distillation run behind `deno task distill`: faces and teacher embeddings computed once
 * (cached beside the checkpoint, so --resume does not rerun the teacher), then the tfjs training
 * loop with the kit's optimiser, schedule, checkpoint/resume files and time budget.
 */
import * as tf from "@tensorflow/tfjs";
import { buildModel } from "../../runtime/src/arch/mod.ts";
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import { readSafetensors, writeSafetensors } from "../../runtime/src/io/safetensors.ts";
import { rng } from "../../runtime/src/random.ts";
import { permutation } from "../data/augment.ts";
import type { FaceDetector } from "../data/faceapi_detect.ts";
import { type AlignMode, openEmbedModel } from "../eval/embed.ts";
import { type BackendName, initBackend } from "./tfjs_backend.ts";
import { curvesSvg, type Pt } from "./curves.ts";
import {
  cacheTensors,
  collectFaces,
  concatCrops,
  constantBaseline,
  cosineLoss,
  distillBatch,
  heldOutFiles,
  listImages,
  meanTarget,
  mirror,
  studentCosine,
  teacherEmbeddings,
  withMirrors,
} from "./distill.ts";
import { TrainGraph } from "./tfjs_graph.ts";
import { getPreset } from "./presets.ts";
import { readResume, writeResume } from "./resume.ts";
import { cosineLR, SGD, trainStep } from "./trainer.ts";

/** Everything `deno task distill` takes. */
export interface DistillOptions {
  teacher: string;
  /** Photos (faces found per `align`) and/or a folder of ready face crops (used as they are). */
  images?: string;
  crops?: string;
  align: AlignMode;
  preset: string;
  kwargs?: Record<string, unknown>;
  out: string;
  epochs?: number;
  maxSeconds?: number;
  maxSteps?: number;
  batch?: number;
  lr?: number;
  seed: number;
  backend: BackendName;
  resume: boolean;
  checkpointSeconds: number;
  holdOut: number;
  /** Centre embeddings on the mean teacher embedding in the loss (default true). */
  centred?: boolean;
  /** Built on demand for --align detect. */
  detector?: () => Promise<FaceDetector>;
}

/** Progress callbacks (the CLI draws bars and prints lines). */
export interface DistillHooks {
  log(line: string): void;
  phase?(name: string, total: number): void;
  tick?(done: number, info?: Record<string, string>): void;
  endPhase?(): void;
}

interface State {
  epoch: number;
  stepInEpoch: number;
  step: number;
  elapsed: number;
  loss: Pt[];
  cos: Pt[];
}

/** Held-out and training cosine reported at the end. */
export interface DistillReport {
  faces: number;
  files: number;
  skipped: number;
  heldOutFaces: number;
  before: { mean: number };
  /** Mean cosine a constant output (the mean training target) reaches on the held-out faces. */
  baseline: number;
  after: { mean: number; min: number; p10: number; n: number; centred: number };
  train: { mean: number };
  steps: number;
  seconds: number;
  backend: string;
}

const NORM = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };

async function loadOrBuildCache(o: DistillOptions, studentIn: [number, number, number], h: DistillHooks) {
  const path = `${o.out}.teacher.safetensors`;
  const teacher = await openEmbedModel(o.teacher, "wasm");
  const teacherBytes = await Deno.readFile(o.teacher);
  const tag = `${o.teacher.split("/").pop()}:${teacherBytes.length}:${o.images}:${o.crops}:${o.align}:${
    studentIn.join("x")
  }`;
  // A cache made for the same teacher, images and student input is reused (resume or not).
  {
    try {
      const r = readSafetensors(await Deno.readFile(path));
      if (r.metadata.repmlp_edge_distill === tag) {
        await teacher.dispose();
        const st = r.tensors.get("student")!, emb = r.tensors.get("teacher_emb")!;
        const files = JSON.parse(r.metadata.files) as string[];
        h.log(`teacher  embeddings of ${st.shape[0]} faces from the cache ${path}`);
        return {
          crops: {
            images: st.data as Uint8Array,
            labels: r.tensors.get("source")!.data as Int32Array,
            n: st.shape[0],
            c: st.shape[1],
            h: st.shape[2],
            w: st.shape[3],
            classes: files,
          },
          emb: emb.data as Float32Array,
          embFlip: r.tensors.get("teacher_emb_mirror")!.data as Float32Array,
          dim: emb.shape[1],
          files,
          skipped: Number(r.metadata.skipped),
          engine: r.metadata.engine,
        };
      }
      h.log(`note     ${path} was made for other inputs; recomputing`);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  const photos = o.images ? await listImages(o.images) : [], ready = o.crops ? await listImages(o.crops) : [];
  if (!photos.length && !ready.length) {
    throw new InvalidArgumentError(`no .png/.jpg images under '${o.images ?? o.crops}'`);
  }
  const detector = o.align === "detect" && photos.length ? await o.detector!() : undefined;
  h.phase?.(`faces (${o.align})`, photos.length + ready.length);
  let c = await collectFaces(photos, studentIn, teacher.pre.input, o.align, detector, (d) => h.tick?.(d));
  if (ready.length) {
    const r = await collectFaces(
      ready,
      studentIn,
      teacher.pre.input,
      "none",
      undefined,
      (d) => h.tick?.(photos.length + d),
    );
    c = photos.length ? concatCrops(c, r) : r;
  }
  const files = c.files;
  h.endPhase?.();
  if (c.student.n < 2) {
    throw new InvalidArgumentError(`found ${c.student.n} face(s) in ${files.length} images; need at least 2`);
  }
  const [Ct, Ht, Wt] = c.teacherShape;
  h.phase?.("teacher", 2 * c.student.n);
  const t0 = performance.now();
  const { emb, dim } = await teacherEmbeddings(teacher, c.teacher, c.student.n, 32, (d) => h.tick?.(d));
  const { emb: embFlip } = await teacherEmbeddings(
    teacher,
    mirror(c.teacher, c.student.n, Ct, Ht, Wt),
    c.student.n,
    32,
    (d) => h.tick?.(c.student.n + d),
  );
  h.endPhase?.();
  h.log(
    `teacher  ${o.teacher} (${teacher.engine}): ${dim}-d embeddings of ${c.student.n} faces + mirrors in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s (from ${files.length} images${c.skipped.length ? `, ${c.skipped.length} without a face` : ""})`,
  );
  const engine = teacher.engine;
  await teacher.dispose();
  await Deno.writeFile(
    path,
    writeSafetensors(cacheTensors(c, emb, embFlip, dim), {
      repmlp_edge_distill: tag,
      files: JSON.stringify(files),
      skipped: String(c.skipped.length),
      engine,
    }),
  );
  return { crops: c.student, emb, embFlip, dim, files, skipped: c.skipped.length, engine };
}

/** Run (or resume) a distillation; writes `<out>` and its .log.jsonl/.curves.svg/.resume/.teacher files. */
export async function runDistill(o: DistillOptions, h: DistillHooks): Promise<DistillReport> {
  const preset = getPreset(o.preset);
  if (preset.task !== "embed") {
    throw new InvalidArgumentError(`--model ${o.preset} is not a face-embedding preset`);
  }
  const backend = await initBackend(o.backend);
  const kw0 = { ...preset.kwargs, ...o.kwargs };
  const probe = buildModel(preset.arch, kw0);
  const studentIn = probe.input as [number, number, number];
  const cache = await loadOrBuildCache(o, studentIn, h);
  const desc = buildModel(preset.arch, { ...kw0, embedding_dim: cache.dim });

  const held = heldOutFiles(cache.files.length, o.holdOut, rng(o.seed * 7 + 1));
  const trainIdx: number[] = [], testIdx: number[] = [];
  for (let i = 0; i < cache.crops.n; i++) (held.has(cache.crops.labels[i]) ? testIdx : trainIdx).push(i);
  if (!trainIdx.length) throw new InvalidArgumentError("every face is held out; add images");
  const train = withMirrors(cache.crops, cache.emb, cache.embFlip, cache.dim, trainIdx);
  const test = testIdx.length
    ? withMirrors(cache.crops, cache.emb, cache.embFlip, cache.dim, testIdx, false)
    : null;

  const batch = Math.min(o.batch ?? preset.batch, train.set.n);
  const epochs = o.epochs ?? preset.epochs, baseLr = o.lr ?? 0.1;
  const stepsPerEpoch = Math.floor(train.set.n / batch);
  const totalSteps = Math.min(epochs * stepsPerEpoch, o.maxSteps ?? Infinity);
  const warmup = Math.min(preset.warmupSteps, Math.ceil(totalSteps / 10));
  const logPath = `${o.out}.log.jsonl`;

  const resumed = o.resume ? await readResume<State>(o.out) : undefined;
  const state: State = resumed?.state ?? { epoch: 0, stepInEpoch: 0, step: 0, elapsed: 0, loss: [], cos: [] };
  const startSD = resumed?.weights, resumeSD = resumed?.optimiser;
  const baseline = test ? constantBaseline(train, test) : NaN;
  const graph = new TrainGraph(desc, startSD, o.seed);
  const opt = new SGD(0.9, preset.weightDecay);
  if (resumeSD) opt.load(graph, resumeSD);
  const center = meanTarget(train);
  const centerT = o.centred === false ? undefined : tf.tensor1d(center);
  const evalTest = async () =>
    test
      ? await studentCosine(graph, test, NORM, 64, center)
      : { mean: NaN, min: NaN, p10: NaN, n: 0, centred: NaN };
  const before = state.step ? { mean: state.cos[0]?.y ?? NaN } : { mean: (await evalTest()).mean };
  if (!state.step) state.cos.push({ x: 0, y: before.mean });
  const log = (x: Record<string, unknown>) =>
    Deno.writeTextFile(logPath, JSON.stringify(x) + "\n", { append: true });
  if (!o.resume) await Deno.writeTextFile(logPath, "");
  await log({
    event: "start",
    time: new Date().toISOString(),
    teacher: o.teacher,
    images: o.images ?? null,
    crops: o.crops ?? null,
    faces: cache.crops.n,
    held_out_faces: testIdx.length,
    preset: o.preset,
    kwargs: desc.kwargs,
    backend,
    batch,
    lr: baseLr,
    epochs,
    resumed_at_step: state.step,
    held_out_cosine_before: before.mean,
  });
  h.log(
    `distill  ${o.preset} (${desc.arch}, ${cache.dim}-d) on ${trainIdx.length} faces ×2 (mirrors), ` +
      `${testIdx.length} held out; backend ${backend}, batch ${batch}, ${epochs} epochs` +
      `${o.maxSeconds ? `, ≤ ${o.maxSeconds} s` : ""}; held-out cosine before ${before.mean.toFixed(4)} ` +
      `(a constant output would score ${baseline.toFixed(4)})`,
  );

  const meta = (extra: Record<string, unknown>) => ({
    repmlp_edge_model: JSON.stringify({ arch: desc.arch, kwargs: desc.kwargs, input: desc.input }),
    repmlp_edge_meta: JSON.stringify({
      task: "face-embedding",
      note: `distilled from ${o.teacher.split("/").pop()} on ${cache.crops.n} unlabelled faces (${
        [o.images, o.crops].filter(Boolean).join(" + ")
      })`,
      preprocess: { layout: "NCHW", input: desc.input, mean: NORM.mean, std: NORM.std },
      training: {
        preset: o.preset,
        method: "distillation (cosine to the teacher's L2-normalised embedding)",
        teacher: o.teacher.split("/").pop(),
        images: o.images ?? null,
        crops: o.crops ?? null,
        align: o.align,
        faces: cache.crops.n,
        batch,
        lr: baseLr,
        backend,
        steps: state.step,
        seconds: Math.round(state.elapsed),
        ...extra,
      },
    }),
  });
  let last: Record<string, unknown> = {};
  const save = async () => {
    await writeResume(o.out, await graph.stateDict(), meta(last), await opt.state(graph), state);
    await Deno.writeTextFile(
      `${o.out}.curves.svg`,
      curvesSvg(`distill ${o.preset} from ${o.teacher.split("/").pop()}`, state.loss, [
        { name: "held-out cosine", pts: state.cos },
      ]),
    );
  };

  let stop = false;
  const onSig = () => {
    if (stop) Deno.exit(130);
    stop = true;
    h.log("\ninterrupt: saving a resumable checkpoint (Ctrl-C again to abort)");
  };
  Deno.addSignalListener("SIGINT", onSig);
  const t0 = performance.now() - state.elapsed * 1000;
  let lastSave = performance.now(), running = 0;
  const progress = () => Math.max(state.step / totalSteps, o.maxSeconds ? state.elapsed / o.maxSeconds : 0);
  const [C, H, W] = desc.input as number[];
  const aug = { pad: preset.pad, ...NORM, jitter: 0.2 };
  outer: while (state.epoch < epochs) {
    const perm = permutation(train.set.n, rng(o.seed * 7919 + state.epoch));
    const r = rng(o.seed * 104729 + state.epoch * 31 + state.stepInEpoch);
    h.phase?.(`epoch ${state.epoch + 1}/${epochs}`, stepsPerEpoch);
    for (; state.stepInEpoch < stepsPerEpoch; state.stepInEpoch++) {
      if (stop || progress() >= 1) break outer;
      const lr = cosineLR(Math.floor(progress() * totalSteps), totalSteps, baseLr, warmup);
      const idx = perm.subarray(state.stepInEpoch * batch, (state.stepInEpoch + 1) * batch);
      const { x, t } = distillBatch(train, idx, aug, r);
      const tt = tf.tensor2d(t, [batch, cache.dim]);
      const res = await trainStep(
        graph,
        opt,
        [],
        x,
        [batch, C, H, W],
        new Int32Array(batch),
        (out) => cosineLoss(out, tt, centerT),
        lr,
      );
      tt.dispose();
      if (!Number.isFinite(res.loss)) {
        throw new InvalidArgumentError(`loss became ${res.loss} at step ${state.step}`, "lower --lr");
      }
      state.step++;
      state.elapsed = (performance.now() - t0) / 1000;
      running = running ? 0.95 * running + 0.05 * res.loss : res.loss;
      if (state.step % 10 === 0) {
        state.loss.push({ x: state.epoch + state.stepInEpoch / stepsPerEpoch, y: res.loss });
        await log({ event: "step", step: state.step, loss: res.loss, lr });
      }
      h.tick?.(state.stepInEpoch + 1, { loss: running.toFixed(4), lr: lr.toFixed(4) });
      if ((performance.now() - lastSave) / 1000 > o.checkpointSeconds) {
        state.stepInEpoch++;
        await save();
        state.stepInEpoch--;
        lastSave = performance.now();
      }
    }
    h.endPhase?.();
    const c = await evalTest();
    state.cos.push({ x: state.epoch + 1, y: c.mean });
    await log({
      event: "epoch",
      epoch: state.epoch + 1,
      step: state.step,
      loss: running,
      held_out_cosine: c.mean,
      held_out_centred_cosine: c.centred,
    });
    h.log(
      `epoch ${state.epoch + 1}/${epochs}: loss ${running.toFixed(4)}, held-out cosine ${
        c.mean.toFixed(4)
      } ` +
        `(centred ${c.centred.toFixed(4)})`,
    );
    state.epoch++;
    state.stepInEpoch = 0;
    await save();
    lastSave = performance.now();
  }
  h.endPhase?.();
  Deno.removeSignalListener("SIGINT", onSig);
  const after = await evalTest();
  const trainCos = await studentCosine(
    graph,
    withMirrors(cache.crops, cache.emb, cache.embFlip, cache.dim, trainIdx, false),
    NORM,
  );
  last = {
    held_out_faces: after.n,
    held_out_cosine: after.mean,
    held_out_cosine_p10: after.p10,
    held_out_centred_cosine: after.centred,
    loss: centerT ? "centred cosine" : "cosine",
    held_out_cosine_before: before.mean,
    held_out_cosine_constant_baseline: baseline,
    train_cosine: trainCos.mean,
  };
  await save();
  const finished = state.epoch >= epochs || progress() >= 1;
  await log({ event: finished ? "done" : "interrupted", step: state.step, elapsed: state.elapsed, ...last });
  if (!finished) h.log(`stopped at step ${state.step}; continue with the same command plus --resume`);
  graph.dispose();
  opt.dispose();
  centerT?.dispose();
  return {
    faces: cache.crops.n,
    files: cache.files.length,
    skipped: cache.skipped,
    heldOutFaces: after.n,
    before,
    baseline,
    after,
    train: { mean: trainCos.mean },
    steps: state.step,
    seconds: state.elapsed,
    backend,
  };
}
