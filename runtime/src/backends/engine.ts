/**
 * The small interface every ONNX Runtime adapter implements, so the session logic (graph building,
 * caching per input size, validation, fallback) is written once.
 */

/** One loaded ONNX graph on one execution provider. */
export interface EngineSession {
  /** Run on an NCHW float32 batch; returns the first output. */
  run(data: Float32Array, dims: number[]): Promise<{ data: Float32Array; dims: number[] }>;
  /** Run and return every output, in the graph's output order (multi-head models such as detectors). */
  runAll(data: Float32Array, dims: number[]): Promise<{ data: Float32Array; dims: number[] }[]>;
  release(): Promise<void>;
}

/** An ONNX Runtime flavour (ORT-web wasm, ORT-web WebGPU, onnxruntime-node). */
export interface Engine {
  /** Short name of the execution provider that runs the graph. */
  readonly provider: string;
  create(model: Uint8Array): Promise<EngineSession>;
}

/** Options the engines understand. */
export interface EngineOptions {
  /** Threads ORT may use (wasm `numThreads`, node `intraOpNumThreads`); default 1. */
  threads?: number;
  /** Sink for warnings and notes (createSession's default: console.warn). */
  log?: (msg: string) => void;
  /**
   * How ORT-web finds its WebAssembly binary. On Cloudflare Workers pass the pre-compiled
   * `module` (Workers cannot compile wasm from bytes at run time); elsewhere the package's own
   * file is used unless `wasmPaths` (URL prefix) or `wasmBinary` (bytes) is given.
   */
  ortWasm?: { module?: WebAssembly.Module; wasmPaths?: string; wasmBinary?: Uint8Array | ArrayBuffer };
  /** WebGPU adapter ORT must use (the one the probe picked). */
  gpuAdapter?: unknown;
}
