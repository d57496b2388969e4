/**
 * deno task bench [--json <file>] [--quick] [--webgpu]
 *
 * Side-by-side timings on the RepMLPNet-T224 stage-3 block (C=256, 16 sharesets, 14×14 partitions,
 * 28×28 input = 2×2 partitions; random weights through buildModel("RepMLPBlock", …)):
 *  - folded (deploy) graph vs training-structure graph on ORT-web wasm, batch 1 and 32;
 *  - batched-MatMul fc3 vs the official grouped 1×1 Conv fc3;
 *  - ORT-web wasm vs onnxruntime-node (native) on the same folded ONNX, both 1 thread;
 *  - GFLOP/s on the block and on a 4096×4096 FC next to the machine's own fp32 GEMM;
 *  - per-dtype latency and peak wasm memory (each dtype in its own process: ORT-web's wasm memory
 *    only grows, so a fresh process gives that dtype's own peak).
 * Times are the minimum of interleaved repetitions (the host is shared), medians are in the JSON.
 */
import { buildModel } from "../../runtime/src/arch/registry.ts";
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import type { ModelDesc } from "../../runtime/src/arch/ir.ts";
import { foldStateDict } from "../../runtime/src/fold.ts";
import { quantizeInt8PerChannel } from "../../runtime/src/io/bundle.ts";
import { buildOnnx, type BuiltGraph, type Precision } from "../../runtime/src/onnx/graph.ts";
import { GraphBuilder } from "../../runtime/src/onnx/proto.ts";
import { randn, randomStateDict, rng } from "../../runtime/src/random.ts";
import { forward } from "../../runtime/src/reference.ts";
import type { Engine, EngineSession } from "../../runtime/src/backends/engine.ts";
import { hostInfo, probeWebGpu } from "../../runtime/src/backends/detect.ts";
import { ortNodeEngine } from "../../runtime/src/backends/ort_node.ts";
import { ortWasmMemoryBytes, ortWebEngine } from "../../runtime/src/backends/ort_web.ts";
import {
  type F32,
  floatToHalf,
  halfToFloat,
  maxAbs,
  maxAbsDiff,
  type StateDict,
} from "../../runtime/src/tensor.ts";
import { main, parseCli } from "./_cli.ts";

const USAGE = `usage: deno task bench [--json <file>] [--quick] [--webgpu]
  --json    also write the figures as JSON
  --quick   fewer repetitions (smoke run, ~1 min)
  --webgpu  also time the WebGPU EP (on a software adapter such as llvmpipe this measures the CPU, not a GPU)`;

const BLOCK = {
  in_channels: 256,
  out_channels: 256,
  h: 14,
  w: 14,
  reparam_conv_k: [1, 3],
  globalperceptron_reduce: 4,
  num_sharesets: 16,
};
const HW: [number, number] = [28, 28];
const C = 256;
/** fc3 FLOPs of the block per sample: every output pixel is an h·w-long dot product (2 FLOP per MAC). */
const BLOCK_FLOP_PER_SAMPLE = 2 * C * HW[0] * HW[1] * BLOCK.h * BLOCK.w;
const FC = 4096;

interface Timing {
  min: number;
  median: number;
  reps: number;
}

function stats(ts: number[]): Timing {
  const s = [...ts].sort((a, b) => a - b);
  return { min: s[0], median: s[s.length >> 1], reps: s.length };
}

async function timeOnce(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Time several functions round-robin (one warm-up each), so load changes hit all of them alike. */
async function interleaved(
  fns: Record<string, () => Promise<unknown>>,
  reps: number,
): Promise<Record<string, Timing>> {
  const ts: Record<string, number[]> = {};
  for (const [k, f] of Object.entries(fns)) {
    await f();
    ts[k] = [];
  }
  for (let r = 0; r < reps; r++) for (const [k, f] of Object.entries(fns)) ts[k].push(await timeOnce(f));
  return Object.fromEntries(Object.entries(ts).map(([k, v]) => [k, stats(v)]));
}

function input(N: number, seed = 2): F32 {
  return randn([N, C, ...HW], seed);
}

function runner(s: EngineSession, x: F32) {
  return () => s.run(x.data, x.shape);
}

function fcGraph(): Uint8Array {
  const b = new GraphBuilder();
  const r = rng(5);
  const w = new Float32Array(FC * FC);
  for (let i = 0; i < w.length; i++) w[i] = r() - 0.5;
  const y = b.op("MatMul", ["input", b.float("W", w, [FC, FC])]);
  b.nodes.push({ opType: "Identity", input: [y], output: ["output"], name: "output" });
  return b.finish("input", [FC], "output", [FC]);
}

function blockWeights() {
  const desc = buildModel("RepMLPBlock", BLOCK);
  const train = randomStateDict(desc, "train", 1);
  const deploy = foldStateDict(desc, train);
  return { desc, train, deploy };
}

/** Deploy weights as an fp16 / int8 bundle would hold them after load. */
function storedAs(sd: StateDict, dtype: "fp32" | "fp16" | "int8"): StateDict {
  if (dtype === "fp32") return sd;
  const out: StateDict = new Map();
  for (const [k, t] of sd) {
    const n = t.data.length;
    if (t.dtype !== "float32" || n < 1024) {
      out.set(k, t);
      continue;
    }
    if (dtype === "fp16") {
      const d = new Float32Array(n);
      for (let i = 0; i < n; i++) d[i] = halfToFloat(floatToHalf((t.data as Float32Array)[i]));
      out.set(k, { dtype: "float32", shape: t.shape, data: d });
    } else if (t.shape.length >= 2) {
      const q = quantizeInt8PerChannel(t);
      const per = n / t.shape[0];
      const d = new Float32Array(n);
      for (let i = 0; i < n; i++) d[i] = q.q.data[i] * q.scale.data[Math.floor(i / per)];
      out.set(k, { dtype: "float32", shape: t.shape, data: d });
    } else out.set(k, t);
  }
  return out;
}

/** A bare 4096→4096 Linear as a model description (a weight-heavy contrast to the block). */
function fcWeights() {
  const desc: ModelDesc = {
    arch: "Linear4096",
    kwargs: {},
    input: [FC, 1, 1],
    root: {
      kind: "seq",
      layers: [{ kind: "flatten" }, { kind: "linear", name: "fc", inF: FC, outF: FC, bias: true }],
    },
  };
  const r = rng(9), a = 1 / Math.sqrt(FC);
  const w = new Float32Array(FC * FC).map(() => (2 * r() - 1) * a);
  const b = new Float32Array(FC).map(() => (2 * r() - 1) * a);
  const deploy: StateDict = new Map([
    ["fc.weight", { dtype: "float32", shape: [FC, FC], data: w }],
    ["fc.bias", { dtype: "float32", shape: [FC], data: b }],
  ]);
  return { desc, deploy };
}

const DTYPES: Record<string, { stored: "fp32" | "fp16" | "int8"; precision: Precision }> = {
  fp32: { stored: "fp32", precision: "fp32" },
  fp16: { stored: "fp16", precision: "fp32" },
  int8: { stored: "int8", precision: "fp32" },
  "int8-dynamic": { stored: "int8", precision: "int8-dynamic" },
  "int8-qdq": { stored: "int8", precision: "int8-qdq" },
};

/** One dtype × model in this (fresh) process: latency at batch 1/32, wasm memory, error vs fp32. */
async function child(spec: string, quick: boolean) {
  const [kind, model] = spec.split(":");
  const cfg = DTYPES[kind];
  if (!cfg || (model !== "block" && model !== "fc")) throw new InvalidArgumentError(`bad --child '${spec}'`);
  const { desc, deploy } = model === "block" ? blockWeights() : fcWeights();
  const inputHW: [number, number] = model === "block" ? HW : [1, 1];
  const mk = (N: number, seed: number) => randn([N, desc.input[0], ...inputHW], seed);
  const g = buildOnnx(desc, storedAs(deploy, cfg.stored), { inputHW, precision: cfg.precision });
  const eng = await ortWebEngine("wasm", { threads: 1 });
  const s = await eng.create(g.bytes);
  const x1 = mk(1, 2), x32 = mk(32, 3);
  const y = await s.run(x1.data, x1.shape);
  const ref = forward(desc, deploy, x1, "deploy");
  const t1 = await interleaved({ n1: runner(s, x1) }, quick ? 5 : 25);
  const mem1 = ortWasmMemoryBytes();
  const t32 = await interleaved({ n32: runner(s, x32) }, quick ? 2 : 6);
  const mem32 = ortWasmMemoryBytes();
  await s.release();
  console.log(JSON.stringify({
    kind,
    model,
    n1: t1.n1,
    n32: t32.n32,
    wasm_mb_n1: mem1 / 2 ** 20,
    wasm_mb_n32: mem32 / 2 ** 20,
    graph_weight_mb: g.weightBytes / 2 ** 20,
    max_abs_err_vs_fp32: maxAbsDiff(y.data, ref.data),
    max_abs_out: maxAbs(ref.data),
  }));
}

async function spawnChild(spec: string, quick: boolean): Promise<Record<string, unknown>> {
  const args = ["run", "-A", new URL(import.meta.url).pathname, "--child", spec];
  if (quick) args.push("--quick");
  const out = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
  if (!out.success) throw new Error(`bench child ${spec} failed: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(text);
}

/** numpy's fp32 GEMM (1 thread) if python3 + numpy exist; null otherwise. */
async function numpyGemm(): Promise<number | null> {
  const code = `
import os
os.environ["OPENBLAS_NUM_THREADS"]="1"; os.environ["OMP_NUM_THREADS"]="1"; os.environ["MKL_NUM_THREADS"]="1"
import time, numpy as np
a=np.random.rand(1024,${FC}).astype(np.float32); b=np.random.rand(${FC},${FC}).astype(np.float32)
a@b; best=1e9
for _ in range(3):
    t=time.perf_counter(); a@b; best=min(best,time.perf_counter()-t)
print(2*1024*${FC}*${FC}/best/1e9)`;
  try {
    const env = { OPENBLAS_NUM_THREADS: "1", OMP_NUM_THREADS: "1", MKL_NUM_THREADS: "1" };
    const out = await new Deno.Command("python3", {
      args: ["-c", code],
      env,
      stdout: "piped",
      stderr: "null",
    })
      .output();
    if (!out.success) return null;
    return Number(new TextDecoder().decode(out.stdout).trim());
  } catch {
    return null;
  }
}

const r2 = (v: number) => Math.round(v * 100) / 100;

await main(async () => {
  const { values } = parseCli(USAGE, {
    json: { type: "string" },
    quick: { type: "boolean", default: false },
    webgpu: { type: "boolean", default: false },
    child: { type: "string" },
  });
  const quick = values.quick!;
  if (values.child) return await child(values.child, quick);
  const started = performance.now();
  const host = hostInfo();
  const cpu = (() => {
    try {
      const t = Deno.readTextFileSync("/proc/cpuinfo");
      return /model name\s*:\s*(.+)/.exec(t)?.[1]?.trim() ?? "unknown CPU";
    } catch {
      return "unknown CPU";
    }
  })();
  const load = (() => {
    try {
      return Deno.loadavg()[0];
    } catch {
      return NaN;
    }
  })();
  console.log(
    `bench    ${cpu}, ${host.cpus} logical CPUs, load average ${
      load.toFixed(2)
    } at start, Deno ${Deno.version.deno}`,
  );
  const R1 = quick ? 5 : 25, R32 = quick ? 2 : 5;

  const { desc, train, deploy } = blockWeights();
  const graphs: Record<string, BuiltGraph> = {
    deploy: buildOnnx(desc, deploy, { inputHW: HW }),
    deploy_conv: buildOnnx(desc, deploy, { inputHW: HW, fc3: "conv" }),
    train: buildOnnx(desc, train, { inputHW: HW, structure: "train" }),
    train_official: buildOnnx(desc, train, { inputHW: HW, structure: "train", fc3: "conv" }),
  };
  const x1 = input(1), x32 = input(32);

  // 1. ORT-web wasm: structures and fc3 implementations.
  const wasm = await ortWebEngine("wasm", { threads: 1 });
  const ws: Record<string, EngineSession> = {};
  for (const [k, g] of Object.entries(graphs)) ws[k] = await wasm.create(g.bytes);
  const fns = (x: F32, keys: string[]) => Object.fromEntries(keys.map((k) => [k, runner(ws[k], x)]));
  console.log("wasm     block: deploy / deploy (conv fc3) / train / train (official) …");
  const w1 = await interleaved(fns(x1, Object.keys(graphs)), R1);
  const w32 = await interleaved(fns(x32, Object.keys(graphs)), R32);

  // 2. FC 4096×4096 on wasm.
  const fcBytes = fcGraph();
  const fcIn = randn([32, FC], 3), fcIn1 = randn([1, FC], 3);
  const wfc = await wasm.create(fcBytes);
  const wfcT = await interleaved({
    n1: () => wfc.run(fcIn1.data, fcIn1.shape),
    n32: () => wfc.run(fcIn.data, fcIn.shape),
  }, quick ? 3 : 6);
  await wfc.release();
  for (const s of Object.values(ws)) await s.release();

  // 3. onnxruntime-node on the same folded ONNX, 1 thread, and its own GEMM figure.
  let native: Record<string, Timing> | null = null, nfcT: Record<string, Timing> | null = null;
  let gemm1: number | null = null, gemmAll: number | null = null, nativeNote = "";
  try {
    const ne: Engine = await ortNodeEngine({ threads: 1 });
    const nd = await ne.create(graphs.deploy.bytes);
    native = await interleaved({ n1: runner(nd, x1), n32: runner(nd, x32) }, R1);
    native.n32 = (await interleaved({ n32: runner(nd, x32) }, R32)).n32;
    await nd.release();
    const nf = await ne.create(fcBytes);
    nfcT = await interleaved({
      n1: () => nf.run(fcIn1.data, fcIn1.shape),
      n32: () => nf.run(fcIn.data, fcIn.shape),
    }, quick ? 3 : 6);
    const big = randn([1024, FC], 4);
    const g1 = await interleaved({ g: () => nf.run(big.data, big.shape) }, 3);
    gemm1 = (2 * 1024 * FC * FC) / g1.g.min / 1e6;
    await nf.release();
    const neAll = await ortNodeEngine({ threads: host.cpus });
    const nfa = await neAll.create(fcBytes);
    const ga = await interleaved({ g: () => nfa.run(big.data, big.shape) }, 3);
    gemmAll = (2 * 1024 * FC * FC) / ga.g.min / 1e6;
    await nfa.release();
  } catch (e) {
    nativeNote = `native backend unavailable: ${(e as Error).message}`;
    console.log(nativeNote);
  }
  const npGemm = await numpyGemm();

  // 4. Per-dtype latency and peak wasm memory, each in a fresh process.
  const dtypes: Record<string, Record<string, unknown>> = {};
  for (const model of ["block", "fc"]) {
    for (const k of Object.keys(DTYPES)) {
      console.log(`dtype    ${k} on ${model === "fc" ? "FC 4096²" : "block"} …`);
      dtypes[`${k}:${model}`] = await spawnChild(`${k}:${model}`, quick);
    }
  }

  // 5. Optional WebGPU.
  let webgpu: Record<string, unknown> | null = null;
  if (values.webgpu) {
    const p = await probeWebGpu();
    if (!p.adapter) webgpu = { skipped: p.reason };
    else {
      const ge = await ortWebEngine("webgpu", { threads: 1 });
      const gs = await ge.create(graphs.deploy.bytes);
      const t = await interleaved({ n1: runner(gs, x1), n32: runner(gs, x32) }, quick ? 2 : 5);
      await gs.release();
      webgpu = {
        adapter: p.description,
        software: p.software,
        f16: p.f16,
        n1_ms: t.n1.min,
        n32_ms: t.n32.min,
      };
    }
  }

  const gf = (flop: number, ms: number) => flop / ms / 1e6;
  const res: Record<string, unknown> = {
    date: new Date().toISOString(),
    machine: `${cpu}, ${host.cpus} logical CPUs (shared), load ${load.toFixed(2)}`,
    deno: Deno.version.deno,
    threads: 1,
    block: { ...BLOCK, input: HW },
    deploy_vs_train_speedup_n1: r2(w1.train.min / w1.deploy.min),
    deploy_vs_train_speedup_n32: r2(w32.train.min / w32.deploy.min),
    deploy_vs_train_official_speedup_n1: r2(w1.train_official.min / w1.deploy.min),
    deploy_vs_train_official_speedup_n32: r2(w32.train_official.min / w32.deploy.min),
    fc3_matmul_vs_conv_speedup_n1: r2(w1.deploy_conv.min / w1.deploy.min),
    fc3_matmul_vs_conv_speedup_n32: r2(w32.deploy_conv.min / w32.deploy.min),
    wasm_vs_native_n1: native ? r2(w1.deploy.min / native.n1.min) : null,
    wasm_vs_native_n32: native ? r2(w32.deploy.min / native.n32.min) : null,
    gflops_block_wasm_n1: r2(gf(BLOCK_FLOP_PER_SAMPLE, w1.deploy.min)),
    gflops_block_wasm_n32: r2(gf(32 * BLOCK_FLOP_PER_SAMPLE, w32.deploy.min)),
    gflops_block_native_n32: native ? r2(gf(32 * BLOCK_FLOP_PER_SAMPLE, native.n32.min)) : null,
    gflops_fc4096_wasm_n1: r2(gf(2 * FC * FC, wfcT.n1.min)),
    gflops_fc4096_wasm_n32: r2(gf(2 * 32 * FC * FC, wfcT.n32.min)),
    gflops_fc4096_native_n1: nfcT ? r2(gf(2 * FC * FC, nfcT.n1.min)) : null,
    gflops_fc4096_native_n32: nfcT ? r2(gf(2 * 32 * FC * FC, nfcT.n32.min)) : null,
    gflops_machine_gemm_1thread: gemm1 === null ? null : r2(gemm1),
    gflops_machine_gemm_all_threads: gemmAll === null ? null : r2(gemmAll),
    gflops_numpy_gemm_1thread: npGemm === null ? null : r2(npGemm),
    ms: {
      wasm_n1: Object.fromEntries(Object.entries(w1).map(([k, v]) => [k, v])),
      wasm_n32: Object.fromEntries(Object.entries(w32).map(([k, v]) => [k, v])),
      native,
      fc4096_wasm: wfcT,
      fc4096_native: nfcT,
    },
    dtypes,
    webgpu,
    notes: nativeNote || undefined,
  };
  for (const [k, d] of Object.entries(dtypes)) {
    const [kind, model] = k.split(":");
    const kk = `${kind.replace("-", "_")}${model === "fc" ? "_fc4096" : ""}`;
    res[`latency_ms_${kk}_n1`] = r2((d.n1 as Timing).min);
    res[`latency_ms_${kk}_n32`] = r2((d.n32 as Timing).min);
    res[`wasm_peak_mb_${kk}_n1`] = r2(d.wasm_mb_n1 as number);
    res[`wasm_peak_mb_${kk}`] = r2(d.wasm_mb_n32 as number);
  }

  const f = (
    v: unknown,
  ) => (v === null || v === undefined ? "n/a" : typeof v === "number" ? v.toFixed(2) : String(v));
  const rows: [string, string, string][] = [
    [
      "deploy vs train-structure speedup (same MatMul fc3)",
      f(res.deploy_vs_train_speedup_n1),
      f(res.deploy_vs_train_speedup_n32),
    ],
    [
      "deploy vs official train structure (grouped-conv fc3)",
      f(res.deploy_vs_train_official_speedup_n1),
      f(res.deploy_vs_train_official_speedup_n32),
    ],
    [
      "fc3 batched MatMul vs grouped 1×1 Conv speedup",
      f(res.fc3_matmul_vs_conv_speedup_n1),
      f(res.fc3_matmul_vs_conv_speedup_n32),
    ],
    ["ORT-web wasm ÷ onnxruntime-node time", f(res.wasm_vs_native_n1), f(res.wasm_vs_native_n32)],
    ["block ms: wasm deploy", f(w1.deploy.min), f(w32.deploy.min)],
    ["block ms: wasm train structure", f(w1.train.min), f(w32.train.min)],
    ["block ms: native deploy", f(native?.n1.min), f(native?.n32.min)],
    [
      "block GFLOP/s: wasm / native",
      `${f(res.gflops_block_wasm_n1)} / -`,
      `${f(res.gflops_block_wasm_n32)} / ${f(res.gflops_block_native_n32)}`,
    ],
    ["FC 4096² GFLOP/s: wasm", f(res.gflops_fc4096_wasm_n1), f(res.gflops_fc4096_wasm_n32)],
    ["FC 4096² GFLOP/s: native", f(res.gflops_fc4096_native_n1), f(res.gflops_fc4096_native_n32)],
  ];
  for (const [k, d] of Object.entries(dtypes)) {
    const [kind, model] = k.split(":");
    rows.push([
      `${model === "fc" ? "FC 4096²" : "block"} ${kind}: ms (wasm MiB) [max err vs fp32]`,
      `${f((d.n1 as Timing).min)} (${f(d.wasm_mb_n1)})`,
      `${f((d.n32 as Timing).min)} (${f(d.wasm_mb_n32)}) [${
        (d.max_abs_err_vs_fp32 as number).toExponential(1)
      }]`,
    ]);
  }
  console.log("\n| measure | batch 1 | batch 32 |\n| --- | --- | --- |");
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
  console.log(
    `\nmachine fp32 GEMM (1024×4096×4096): onnxruntime-node 1 thread ${
      f(gemm1)
    } GFLOP/s, ${host.cpus} threads ${f(gemmAll)} GFLOP/s, numpy 1 thread ${f(npGemm)} GFLOP/s`,
  );
  if (webgpu) console.log(`webgpu   ${JSON.stringify(webgpu)}`);
  console.log(`done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  if (values.json) {
    await Deno.writeTextFile(values.json, JSON.stringify(res, null, 2) + "\n");
    console.log(`wrote ${values.json}`);
  }
});
