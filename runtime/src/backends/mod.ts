/**
 * Run a deploy-mode model on ONNX Runtime (ORT-web WebGPU or WASM, onnxruntime-node) or on the
 * pure-TypeScript reference forward, behind one `Session` interface.
 *
 * The ONNX graph is built from the description + weights at load time (src/onnx/graph.ts), once
 * per input size (a RepMLPNet takes any size whose stage maps divide into its partitions), and the
 * ORT session of each size is reused. `auto` picks a hardware WebGPU adapter when there
 * is one and otherwise WASM, logging why. ORT imports stay in the adapters (ort_web.ts, ort_node.ts);
 * onnxruntime-node is imported only when `backend: "native"` is asked for.
 * @module
 */
import type { ModelDesc } from "../arch/ir.ts";
import { walk } from "../arch/ir.ts";
import { InvalidArgumentError, InvalidInputError, UnsupportedError } from "../errors.ts";
import { foldStateDict } from "../fold.ts";
import { loadBundle } from "../deploy_model.ts";
import { buildOnnx, type Fc3Impl, type Precision, resolveInput } from "../onnx/graph.ts";
import { detectMode } from "../params.ts";
import { checkInput, forward } from "../reference.ts";
import { type F32, f32, numel, type StateDict } from "../tensor.ts";
import { type GpuLike, hostInfo, probeWebGpu } from "./detect.ts";
import type { Engine, EngineOptions, EngineSession } from "./engine.ts";
import { ortWebEngine } from "./ort_web.ts";
import { LruPool } from "./lru.ts";

export type { Fc3Impl, Precision } from "../onnx/graph.ts";
export { type GpuAdapterLike, type GpuLike, hostInfo, probeWebGpu, type WebGpuProbe } from "./detect.ts";
export { ortWasmMemoryBytes } from "./ort_web.ts";

/** Requested backend. */
export type Backend = "auto" | "webgpu" | "wasm" | "native" | "reference";
/** Backend that actually runs. */
export type ResolvedBackend = Exclude<Backend, "auto">;
/** Every accepted backend name. */
export const BACKENDS: readonly Backend[] = ["auto", "webgpu", "wasm", "native", "reference"];

/** A deploy-mode model (a loaded bundle or a conversion result). */
export interface ModelSource {
  /** Architecture description of the model. */
  desc: ModelDesc;
  /** Deploy-mode float weights (a TRAIN state_dict is folded at load). */
  tensors: StateDict;
  /** Storage precision of the bundle the weights came from (decides the graph precision, see below). */
  dtype?: "fp32" | "fp16" | "int8";
  /**
   * int8 only: `weights` (default) dequantises at load and runs float32 — bundle 4× smaller, output
   * equal to the int8 reference; `dynamic` keeps FC weights int8 in memory and quantises activations
   * per batch (DynamicQuantizeLinear + MatMulInteger): less memory, extra activation error.
   */
  quant?: "weights" | "dynamic";
}

/** Options of {@link createSession}. */
export interface SessionOptions extends EngineOptions {
  /** Default "auto". */
  backend?: Backend;
  /** Force the graph precision (default: chosen from backend and dtype, see docs/runtime.md). */
  precision?: Precision;
  /** Partition-FC implementation, default "matmul". */
  fc3?: Fc3Impl;
  /**
   * Build and warm up for this input size right away (default: the model's own size; bare blocks:
   * one partition). Models that take several sizes (RepMLPNet, blocks) build one more graph and ORT
   * session the first time `run` sees another size that fits, and keep the `maxSizes` most recently
   * used ones.
   */
  inputHW?: [number, number];
  /** How many input sizes keep their ORT session (least recently used is released first). Default 4. */
  maxSizes?: number;
  /** Run one batch-1 zero input at creation so the first real call is not the slow one. Default true. */
  warmup?: boolean;
  /** WebGPU entry point to use instead of `navigator.gpu`; null = behave as if there were no WebGPU. */
  gpu?: GpuLike | null;
}

/** A loaded model on one backend. */
export interface Session {
  /** The backend that actually runs (after any fallback). */
  readonly backend: ResolvedBackend;
  /** Execution provider name ("wasm", "webgpu", "cpu (onnxruntime-node)", "reference"). */
  readonly provider: string;
  /** Graph precision ("fp32" for the reference). */
  readonly precision: Precision;
  /** Why `auto` did not pick WebGPU, or why the backend runs in a degraded mode (null otherwise). */
  readonly note: string | null;
  /** The model's description. */
  readonly desc: ModelDesc;
  /** Run an NCHW float32 batch. Bad shape/dtype/NaN → InvalidInputError. */
  run(x: F32): Promise<F32>;
  /** Free the ORT sessions; the session cannot run afterwards. */
  dispose(): Promise<void>;
}

/** Default thread count: 1 (see docs/runtime.md: on a shared 2-core host more threads were slower). */
export function defaultThreads(): number {
  return 1;
}

function firstPartition(desc: ModelDesc): [number, number] {
  let hw: [number, number] | null = null;
  walk(desc.root, (l) => {
    if (!hw && (l.kind === "repmlpnet_block" || l.kind === "repmlp21")) hw = [l.h, l.w];
  });
  return hw ?? [1, 1];
}

/** Check that `x` is a float32 NCHW tensor fitting `desc` with finite values. */
export function validateInput(desc: ModelDesc, x: F32): void {
  const ok = x !== null && typeof x === "object" && x.dtype === "float32" && x.data instanceof Float32Array &&
    Array.isArray(x.shape);
  if (!ok) {
    const got = x && typeof x === "object" ? `dtype ${(x as { dtype?: unknown }).dtype}` : typeof x;
    throw new InvalidInputError(
      `input must be a float32 tensor {dtype: "float32", shape, data: Float32Array}, got ${got}`,
      "convert images/arrays to float32 NCHW first (e.g. readNpy(...) then toF32)",
    );
  }
  if (x.shape.some((d) => !Number.isInteger(d) || d < 1) || numel(x.shape) !== x.data.length) {
    throw new InvalidInputError(`input shape [${x.shape}] does not match its ${x.data.length} values`);
  }
  checkInput(desc, x);
}

function choosePrecision(
  backend: ResolvedBackend,
  m: ModelSource,
  f16: boolean,
): Precision {
  if (backend === "webgpu") return m.dtype === "fp16" && f16 ? "fp16" : "fp32";
  if ((backend === "wasm" || backend === "native") && m.dtype === "int8" && m.quant === "dynamic") {
    return "int8-dynamic";
  }
  return "fp32";
}

class OrtSession implements Session {
  readonly backend: ResolvedBackend;
  readonly provider: string;
  readonly precision: Precision;
  readonly desc: ModelDesc;
  note: string | null;
  #engine: Engine;
  #weights: StateDict;
  #fc3: Fc3Impl;
  #sessions: LruPool<EngineSession>;
  #disposed = false;

  constructor(
    backend: ResolvedBackend,
    engine: Engine,
    desc: ModelDesc,
    weights: StateDict,
    precision: Precision,
    fc3: Fc3Impl,
    note: string | null,
    maxSizes: number,
  ) {
    this.#sessions = new LruPool(maxSizes);
    this.backend = backend;
    this.provider = engine.provider;
    this.#engine = engine;
    this.desc = desc;
    this.#weights = weights;
    this.precision = precision;
    this.#fc3 = fc3;
    this.note = note;
  }

  #use<R>(H: number, W: number, fn: (s: EngineSession) => Promise<R>): Promise<R> {
    const create = () =>
      this.#engine.create(
        buildOnnx(this.desc, this.#weights, { inputHW: [H, W], precision: this.precision, fc3: this.#fc3 })
          .bytes,
      );
    return this.#sessions.use(`${H}x${W}`, create, fn);
  }

  async warm(H: number, W: number) {
    const C = this.desc.input[0];
    await this.#use(H, W, (s) => s.run(new Float32Array(C * H * W), [1, C, H, W]));
  }

  async run(x: F32): Promise<F32> {
    if (this.#disposed) throw new InvalidArgumentError("session was disposed");
    validateInput(this.desc, x);
    const y = await this.#use(x.shape[2], x.shape[3], (s) => s.run(x.data, x.shape));
    return f32(y.dims, y.data);
  }

  async dispose() {
    if (this.#disposed) return;
    this.#disposed = true;
    await this.#sessions.clear();
  }
}

class ReferenceSession implements Session {
  readonly backend = "reference" as const;
  readonly provider = "reference";
  readonly precision = "fp32" as const;
  readonly note: string | null = null;
  readonly desc: ModelDesc;
  #weights: StateDict;
  #disposed = false;
  constructor(desc: ModelDesc, weights: StateDict) {
    this.desc = desc;
    this.#weights = weights;
  }
  run(x: F32): Promise<F32> {
    if (this.#disposed) return Promise.reject(new InvalidArgumentError("session was disposed"));
    try {
      validateInput(this.desc, x);
      return Promise.resolve(forward(this.desc, this.#weights, x, "deploy"));
    } catch (e) {
      return Promise.reject(e);
    }
  }
  dispose(): Promise<void> {
    this.#disposed = true;
    return Promise.resolve();
  }
}

async function engineFor(backend: "wasm" | "webgpu" | "native", o: EngineOptions): Promise<Engine> {
  if (backend === "native") {
    // Dynamic import keeps the N-API addon out of every other code path (and out of Worker bundles
    // that mark onnxruntime-node external).
    const { ortNodeEngine } = await import("./ort_node.ts");
    return ortNodeEngine(o);
  }
  return ortWebEngine(backend, o);
}

/**
 * Load `model` on a backend. `auto` uses a hardware WebGPU adapter when one exists (software
 * adapters such as llvmpipe are skipped: slower than WASM) and falls back to WASM with a logged
 * reason, also when the WebGPU session cannot be created. Explicit `webgpu` without an adapter →
 * UnsupportedError; unknown backend → InvalidArgumentError.
 */
export async function createSession(model: ModelSource, opts: SessionOptions = {}): Promise<Session> {
  const backend = opts.backend ?? "auto";
  if (!BACKENDS.includes(backend)) {
    throw new InvalidArgumentError(`unknown backend '${backend}'`, `use one of: ${BACKENDS.join(", ")}`);
  }
  if (!model || typeof model !== "object" || !model.desc || !(model.tensors instanceof Map)) {
    throw new InvalidArgumentError("createSession needs { desc, tensors } (a loaded bundle)");
  }
  const log = opts.log ?? ((m: string) => console.warn(`[repmlp-edge] ${m}`));
  const { desc } = model;
  const weights = detectMode(desc, model.tensors) === "train"
    ? foldStateDict(desc, model.tensors)
    : model.tensors;
  if (backend === "reference") return new ReferenceSession(desc, weights);

  const eo: EngineOptions = { threads: opts.threads ?? defaultThreads(), log, ortWasm: opts.ortWasm };
  const fc3 = opts.fc3 ?? "matmul";
  const maxSizes = opts.maxSizes ?? 4;
  if (!Number.isInteger(maxSizes) || maxSizes < 1) {
    throw new InvalidArgumentError(`maxSizes must be an integer >= 1, got ${maxSizes}`);
  }
  const warmHW = opts.inputHW ??
    (desc.input[1] !== null && desc.input[2] !== null
      ? [desc.input[1], desc.input[2]] as [number, number]
      : firstPartition(desc));
  if (opts.inputHW) resolveInput(desc, opts.inputHW); // validates a fixed-size model's inputHW

  const start = async (b: ResolvedBackend, f16: boolean, note: string | null, adapter?: unknown) => {
    const engine = await engineFor(b as "wasm" | "webgpu" | "native", { ...eo, gpuAdapter: adapter });
    const precision = opts.precision ?? choosePrecision(b, model, f16);
    const s = new OrtSession(b, engine, desc, weights, precision, fc3, note, maxSizes);
    if (opts.warmup ?? true) {
      try {
        await s.warm(warmHW[0], warmHW[1]);
      } catch (e) {
        await s.dispose();
        throw e;
      }
    }
    return s;
  };

  if (backend === "webgpu" || backend === "auto") {
    const gpu = await probeWebGpu(opts.gpu);
    let reason = gpu.reason;
    if (!reason && backend === "auto" && gpu.software) {
      reason = `WebGPU adapter '${gpu.description}' is a software renderer (slower than WASM)`;
    }
    if (backend === "webgpu") {
      if (gpu.reason) {
        throw new UnsupportedError(
          `WebGPU is not available: ${gpu.reason}`,
          "use --backend auto or --backend wasm",
        );
      }
      if (gpu.software) log(`WebGPU adapter '${gpu.description}' is a software renderer: correct but slow`);
      if (model.dtype === "fp16" && !gpu.f16 && !opts.precision) {
        log("adapter has no shader-f16: fp16 weights are upcast and run in fp32");
      }
      return start("webgpu", gpu.f16, null, gpu.adapter);
    }
    if (!reason) {
      try {
        return await start("webgpu", gpu.f16, null, gpu.adapter);
      } catch (e) {
        reason = `WebGPU session failed (${(e as Error).message})`;
      }
    }
    log(`backend auto: using wasm: ${reason}`);
    return start("wasm", false, reason);
  }
  return start(backend, false, null);
}

/**
 * Verify and load bundle bytes (src/io/bundle.ts via loadBundle) and create a session for them.
 * `quant: "dynamic"` keeps an int8 bundle's FC weights int8 in memory (see {@link ModelSource}).
 */
export async function createSessionFromBundle(
  bytes: Uint8Array,
  opts: SessionOptions & { quant?: ModelSource["quant"] } = {},
): Promise<Session> {
  const m = await loadBundle(bytes);
  return createSession({ desc: m.desc, tensors: m.tensors, dtype: m.dtype, quant: opts.quant }, opts);
}

/** A ready ONNX graph (a shipped model such as the face detector) on one engine. */
export interface GraphSession {
  /** The backend that runs it. */
  readonly backend: "wasm" | "webgpu" | "native";
  /** Execution provider name. */
  readonly provider: string;
  /** Run on a float32 input; every output in graph order. */
  runAll(data: Float32Array, dims: number[]): Promise<{ data: Float32Array; dims: number[] }[]>;
  /** Free the ORT session. */
  release(): Promise<void>;
}

/**
 * Load ready ONNX bytes on a backend. `auto` and `reference` run on wasm: the graphs this serves are
 * small, and a per-call WebGPU round trip would cost more than it saves.
 */
export async function createGraphSession(
  bytes: Uint8Array,
  opts: EngineOptions & { backend?: Backend } = {},
): Promise<GraphSession> {
  const b = opts.backend === "webgpu" || opts.backend === "native" ? opts.backend : "wasm";
  const engine = await engineFor(b, { threads: opts.threads ?? defaultThreads(), ...opts });
  const s = await engine.create(bytes);
  return {
    backend: b,
    provider: engine.provider,
    runAll: (d, dims) => s.runAll(d, dims),
    release: () => s.release(),
  };
}

/** Host description for logs: runtime and CPU count. */
export function describeHost(): string {
  const h = hostInfo();
  return `${h.host}, ${h.cpus} logical CPU(s), WebGPU API ${h.webgpuApi ? "present" : "absent"}`;
}
