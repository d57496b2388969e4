/**
 * Deno entry (`deno serve` locally, Deno Deploy in production). `deno task build` generates
 * `dist/deno/server.mjs`, which calls {@link createServer} with the files shipped beside it (or, with
 * `--inline`, their bytes embedded in the module):
 *
 * ```sh
 * deno serve --allow-net --allow-read --allow-env --unstable-kv dist/deno/server.mjs
 * ```
 *
 * Gallery: Deno KV (`Deno.openKv()`: the hosted KV on Deploy; locally a file in DENO_DIR, or
 * `$DATA_DIR/gallery.kv` when DATA_DIR is set — that needs `--allow-write` too). Env (parsed by
 * `../config.ts`): `API_KEYS` (comma-separated; required), `DATA_DIR`, `BACKEND` (`wasm`, default, or
 * `native`: onnxruntime-node where Node addons load, else wasm with the reason logged), and as for
 * `deno task serve`: RATE_LIMIT_RPM, CORS_ORIGINS, MAX_BODY_BYTES, MAX_PIXELS.
 */
import { KvStore } from "../../src/server/store/kv.ts";
import type { ServedModelInfo } from "../../src/server/model_info.ts";
import { ortWasmMemoryBytes } from "../../src/backends/ort_web.ts";
import type { Engine } from "../../src/backends/engine.ts";
import { ConfigError, parseConfig, type ServerConfig } from "../config.ts";
import {
  appOptionsFromEnv,
  type BuildInfo,
  coldStart,
  createEdgeHandler,
  edgeDetector,
  type LazyEngine,
  loadEdgeModels,
  timedWasmEngine,
} from "../shared.ts";

/** A file shipped beside the entry (path relative to it) or its bytes inlined by the build. */
export type Asset = string | Uint8Array;

/** What the generated entry passes in. */
export interface ServerAssets {
  /** `import.meta.url` of the generated entry: relative asset paths resolve against it. */
  base: string;
  ortWasm: Asset;
  /** Each model: served-model info and its ONNX graph (built by `deno task build`). */
  models: { info: ServedModelInfo; file: string; onnx: Asset }[];
  /** The face detector's ONNX graph (weights/manifest.json `detectors`), when the build ships one. */
  detector?: { file: string; onnx: Asset };
  build: BuildInfo;
}

async function read(base: string, a: Asset, what: string): Promise<Uint8Array> {
  if (typeof a !== "string") return a;
  return await shipped(new URL(a, base), what, Deno.readFile);
}

async function stat(base: string, file: string, what: string): Promise<void> {
  await shipped(new URL(file, base), what, Deno.stat);
}

/** `op` on a file shipped beside server.mjs; missing or unreadable → ConfigError saying how to fix it. */
async function shipped<T>(url: URL, what: string, op: (u: URL) => Promise<T>): Promise<T> {
  try {
    return await op(url);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new ConfigError(
        `${what} not found at ${url.pathname}: ship it beside server.mjs (deno task build)`,
      );
    }
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      throw new ConfigError(`cannot read ${url.pathname}: run deno serve with --allow-read`);
    }
    throw e;
  }
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    throw new ConfigError(`cannot read env ${name}: run deno serve with --allow-env`);
  }
}

/**
 * The ORT engine for BACKEND: onnxruntime-node for `native` when its addon loads here (else wasm,
 * with the reason logged once), ORT-web wasm (one thread) otherwise. Loaded on the first model use.
 */
function lazyEngine(
  assets: ServerAssets,
  backendOf: () => "wasm" | "native",
  wasmModule: Promise<WebAssembly.Module> | undefined,
): LazyEngine {
  let engine: Promise<Engine> | null = null;
  let actual: string | null = null;
  const log = (m: string) => console.warn(`[repmlp-edge] ${m}`);
  const wasm = async () => {
    actual = "wasm";
    const module = await wasmModule?.catch(() => undefined);
    let ortWasm: { module: WebAssembly.Module } | { wasmBinary: Uint8Array };
    if (module) ortWasm = { module };
    else {
      const wasmBinary = await read(assets.base, assets.ortWasm, "ort-wasm-simd-threaded.wasm");
      if (wasmBinary.length < 8 || wasmBinary[0] !== 0 || wasmBinary[1] !== 0x61) {
        throw new ConfigError(
          "ort-wasm-simd-threaded.wasm is not a WebAssembly binary: rebuild with deno task build",
        );
      }
      ortWasm = { wasmBinary };
    }
    return timedWasmEngine({ log, ortWasm });
  };
  const native = async (): Promise<Engine> => {
    actual = "native";
    try {
      const { ortNodeEngine, ortNodeLoadMs } = await import("../../src/backends/ort_node.ts");
      const e = await ortNodeEngine({ threads: 1, log });
      coldStart.wasmMs = ortNodeLoadMs();
      log(`BACKEND=native: onnxruntime-node loaded in ${Math.round(ortNodeLoadMs() ?? 0)} ms`);
      return e;
    } catch (err) {
      actual = "wasm";
      log(`BACKEND=native: falling back to wasm: ${(err as Error).message}`);
      return wasm();
    }
  };
  return {
    get() {
      engine ??= backendOf() === "native" ? native() : wasm();
      engine.catch(() => (engine = null));
      return engine;
    },
    backend: () => actual ?? backendOf(),
  };
}

function edgeBackend(cfg: ServerConfig): "wasm" | "native" {
  if (cfg.backend !== "wasm" && cfg.backend !== "native") {
    throw new ConfigError(
      `BACKEND=${cfg.backend} is not available in the edge build: use wasm (default) or native`,
    );
  }
  return cfg.backend;
}

/** ORT's wasm, compiled in the background from the bundle's first module (tools/build/bundle_js.ts). */
function earlyWasm(): Promise<WebAssembly.Module> | undefined {
  const g = globalThis as { __repmlpEdgeWasm?: Promise<WebAssembly.Module> };
  const p = g.__repmlpEdgeWasm;
  p?.then(() => {
    const t0 = coldStart.moduleStartMs ?? 0;
    coldStart.wasmCompileReadyMs ??= performance.now() - t0;
  }, () => {});
  return p;
}

/**
 * The `deno serve` default export. Models are set up at module load without work; unless
 * `PRELOAD=0`, the face model's session is then created in the background (after the listener is up)
 * so that a cold start's first embed does not wait for it from the start; the classifier stays lazy.
 */
export function createServer(assets: ServerAssets): { fetch(req: Request): Promise<Response> } {
  const wasmModule = earlyWasm();
  let cfg: ServerConfig | null = null;
  const config = () => (cfg ??= parseConfig(env, { backend: "wasm" }));
  const engine = lazyEngine(assets, () => edgeBackend(config()), wasmModule);
  const models = loadEdgeModels(
    assets.models.map((m) => ({
      info: m.info,
      file: m.file,
      onnx: () => read(assets.base, m.onnx, `graph ${m.file}`),
    })),
    engine,
  );
  try {
    if (env("PRELOAD") !== "0") setTimeout(() => models.preload?.("face").catch(() => {}), 0);
  } catch { /* no --allow-env: the first request reports it */ }
  const handler = createEdgeHandler<void>({
    check() {
      if (!env("API_KEYS")?.trim()) {
        throw new ConfigError(
          "API_KEYS is not set: export API_KEYS=<key>[,<key>…] (each ≥ 8 characters); on Deno Deploy add it " +
            "under the project's environment variables",
        );
      }
    },
    async init() {
      if (typeof Deno.openKv !== "function") {
        throw new ConfigError("Deno KV is unavailable: run deno serve with --unstable-kv");
      }
      const c = config();
      if (edgeBackend(c) === "wasm" && typeof assets.ortWasm === "string") {
        // Read lazily (or compiled early); say now, not at the first embed, when it is missing.
        await stat(assets.base, assets.ortWasm, "ort-wasm-simd-threaded.wasm");
      }
      const store = await KvStore.open(c.dataDir ? `${c.dataDir.replace(/\/$/, "")}/gallery.kv` : undefined);
      const det = assets.detector;
      const faceDetector = det
        ? edgeDetector(engine, () => read(assets.base, det.onnx, `detector ${det.file}`))
        : undefined;
      return { models, store, apiKeys: c.apiKeys, options: { ...appOptionsFromEnv(env), faceDetector } };
    },
    health: () => ({
      target: "deno",
      backend: engine.backend(),
      wasmMemoryBytes: ortWasmMemoryBytes(),
      build: assets.build,
    }),
  });
  return { fetch: (req) => handler(req, undefined) };
}
