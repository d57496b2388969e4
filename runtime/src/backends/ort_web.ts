/**
 * onnxruntime-web adapters: WASM (`onnxruntime-web`, which resolves to the Node build in Deno) and
 * the native WebGPU EP (`onnxruntime-web/webgpu`). ORT-web initialises its wasm runtime once per
 * process and per build, on the first session: thread count and the wasm source apply then.
 * No Deno/Node APIs here: this file must load on Cloudflare Workers.
 */
import { RepmlpError, UnsupportedError } from "../errors.ts";
import type { Engine, EngineOptions, EngineSession } from "./engine.ts";

type Ort = typeof import("onnxruntime-web");
type Kind = "wasm" | "webgpu";

interface BuildState {
  ort: Ort;
  initialised: boolean;
  threads: number;
}

const builds = new Map<Kind, Promise<BuildState>>();
/**
 * Runs are serialised per ORT-web build: concurrent `run()` calls on the WebGPU EP never settle (seen
 * with 8 parallel calls), and the wasm runtime executes one inference at a time anyway.
 */
const queues = new Map<Kind, Promise<unknown>>();

function serial<T>(kind: Kind, fn: () => Promise<T>): Promise<T> {
  const prev = queues.get(kind) ?? Promise.resolve();
  const next = prev.then(fn, fn);
  queues.set(kind, next.catch(() => {}));
  return next;
}
const memories = new Set<WebAssembly.Memory>();

/** Current byte size of every WebAssembly memory ORT-web created (wasm memory only grows: this is the peak). */
export function ortWasmMemoryBytes(): number {
  let n = 0;
  for (const m of memories) n += m.buffer.byteLength;
  return n;
}

function collectMemories(obj: unknown, depth = 0) {
  if (!obj || typeof obj !== "object" || depth > 2) return;
  for (const v of Object.values(obj as Record<string, unknown>)) {
    if (v instanceof WebAssembly.Memory) memories.add(v);
    else if (depth < 1) collectMemories(v, depth + 1);
  }
}

type Instantiate = typeof WebAssembly.instantiate;

let wasmMs: number | null = null;

/** Time ORT-web's WebAssembly.instantiate took (compile + instantiate from bytes, or instantiate of a given module). */
export function ortWebWasmMs(): number | null {
  return wasmMs;
}

/**
 * While ORT initialises: record its wasm memory (for the benchmark's peak-memory figure) and, when a
 * pre-compiled module is given, instantiate that instead of the bytes ORT would compile.
 */
async function withInstantiateHook<T>(
  module: WebAssembly.Module | undefined,
  fn: () => Promise<T>,
): Promise<T> {
  const orig: Instantiate = WebAssembly.instantiate;
  const hooked = async (src: unknown, imports?: WebAssembly.Imports) => {
    collectMemories(imports);
    const t0 = performance.now();
    let res: WebAssembly.WebAssemblyInstantiatedSource | WebAssembly.Instance;
    if (module && !(src instanceof WebAssembly.Module)) {
      res = { instance: await orig.call(WebAssembly, module, imports), module };
    } else {
      res = await (orig as (s: unknown, i?: WebAssembly.Imports) => Promise<typeof res>).call(
        WebAssembly,
        src,
        imports,
      );
    }
    wasmMs = (wasmMs ?? 0) + performance.now() - t0;
    collectMemories((res instanceof WebAssembly.Instance ? res : res.instance).exports);
    return res;
  };
  WebAssembly.instantiate = hooked as Instantiate;
  try {
    return await fn();
  } finally {
    WebAssembly.instantiate = orig;
  }
}

async function load(kind: Kind): Promise<BuildState> {
  let p = builds.get(kind);
  if (!p) {
    p = (kind === "webgpu" ? import("onnxruntime-web/webgpu") : import("onnxruntime-web")).then((m) => ({
      ort: m as Ort,
      initialised: false,
      threads: 1,
    }));
    builds.set(kind, p);
  }
  try {
    return await p;
  } catch (e) {
    builds.delete(kind);
    throw new UnsupportedError(`could not load onnxruntime-web (${kind}): ${(e as Error).message}`);
  }
}

function wrapRunError(e: unknown, what: string): never {
  if (e instanceof RepmlpError) throw e;
  throw new RepmlpError("runtime", `${what}: ${(e as Error)?.message ?? e}`, { cause: e });
}

/** ORT-web engine for `kind`. Throws UnsupportedError when the package cannot load. */
export async function ortWebEngine(kind: Kind, o: EngineOptions): Promise<Engine> {
  const st = await load(kind);
  const { ort } = st;
  const threads = Math.max(1, Math.floor(o.threads ?? 1));
  if (!st.initialised) {
    ort.env.wasm.numThreads = threads;
    st.threads = threads;
    const w = o.ortWasm;
    if (w?.wasmPaths) ort.env.wasm.wasmPaths = w.wasmPaths;
    if (w?.wasmBinary) ort.env.wasm.wasmBinary = w.wasmBinary;
    // Any non-empty buffer makes ORT skip fetching; the hook then instantiates the given module.
    else if (w?.module) ort.env.wasm.wasmBinary = new Uint8Array(8);
    if (kind === "webgpu" && o.gpuAdapter) (ort.env.webgpu as { adapter?: unknown }).adapter = o.gpuAdapter;
  } else if (threads !== st.threads) {
    o.log?.(
      `onnxruntime-web (${kind}) already runs with ${st.threads} thread(s); threads=${threads} ignored`,
    );
  }
  const provider = kind;
  return {
    provider,
    async create(model: Uint8Array): Promise<EngineSession> {
      const opts = {
        executionProviders: [kind],
        graphOptimizationLevel: "all" as const,
        logSeverityLevel: 3 as const, // errors only: shipped graphs may carry harmless unused initialisers
      };
      let s: Awaited<ReturnType<typeof ort.InferenceSession.create>>;
      try {
        s = await serial(
          kind,
          () =>
            st.initialised
              ? ort.InferenceSession.create(model, opts)
              : withInstantiateHook(o.ortWasm?.module, () => ort.InferenceSession.create(model, opts)),
        );
        st.initialised = true;
      } catch (e) {
        wrapRunError(e, `onnxruntime-web (${kind}) could not create a session`);
      }
      const inName = s.inputNames[0];
      const runAll = (data: Float32Array, dims: number[], names: readonly string[]) =>
        serial(kind, async () => {
          let r;
          try {
            r = await s.run({ [inName]: new ort.Tensor("float32", data, dims) }, names);
          } catch (e) {
            wrapRunError(e, `onnxruntime-web (${kind}) run failed`);
          }
          return names.map((n) => {
            const out = r[n];
            const res = { data: out.data as Float32Array, dims: [...out.dims] };
            out.dispose();
            return res;
          });
        });
      return {
        async run(data, dims) {
          return (await runAll(data, dims, [s.outputNames[0]]))[0];
        },
        runAll(data, dims) {
          return runAll(data, dims, s.outputNames);
        },
        async release() {
          await serial(kind, () => s.release());
        },
      };
    },
  };
}
