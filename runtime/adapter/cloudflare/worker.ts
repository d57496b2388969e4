/**
 * Cloudflare Workers entry. `deno task build` generates the real module entry, which imports the
 * ORT binary as a CompiledWasm module and each model's bundle as a Data module (an ArrayBuffer), and
 * passes them here:
 *
 * ```js
 * import ortWasm from "./ort-wasm-simd-threaded.wasm";
 * import face from "./models/face.int8.safetensors";
 * export default createWorker({
 *   ortWasm,
 *   models: [{ info: { task: "face", name: "face", … }, file: "models/face.int8.safetensors", bundle: face }],
 *   build,
 * });
 * ```
 *
 * Bindings (wrangler.jsonc): `DB` (D1, the face gallery; schema in `migrations/`), secret `API_KEYS`
 * (comma-separated), optional vars `RATE_LIMIT_RPM`, `CORS_ORIGINS`, `MAX_BODY_BYTES`, `MAX_PIXELS`.
 */
import { type D1DatabaseLike, D1Store } from "../../src/server/store/d1.ts";
import type { ServedModelInfo } from "../../src/server/model_info.ts";
import { ortWasmMemoryBytes } from "../../src/backends/ort_web.ts";
import type { Engine } from "../../src/backends/engine.ts";
import { ConfigError, parseConfig } from "../config.ts";
import { graphOfBundle, type Int8Mode } from "../graph.ts";
import {
  appOptionsFromEnv,
  type BuildInfo,
  createEdgeHandler,
  edgeDetector,
  loadEdgeModels,
  timedWasmEngine,
} from "../shared.ts";

/** Worker environment: bindings and vars declared in wrangler.jsonc, secrets from `wrangler secret put`. */
export interface WorkerEnv {
  DB?: D1DatabaseLike;
  API_KEYS?: string;
  /** Optional vars, as for `deno task serve`: RATE_LIMIT_RPM, CORS_ORIGINS, MAX_BODY_BYTES, MAX_PIXELS. */
  [name: string]: unknown;
}

/** What the generated entry passes in. */
export interface WorkerAssets {
  /** `ort-wasm-simd-threaded.wasm`, imported as a CompiledWasm module. */
  ortWasm: WebAssembly.Module;
  /**
   * Each model: served-model info and its bundle, imported as a Data module (ArrayBuffer). The graph
   * is built from it on the model's first use: workerd's start-up grows with the Data modules' size
   * (measured in docs/edge.md), and the int8 bundle is 4× smaller than its float32 graph.
   */
  models: { info: ServedModelInfo; file: string; bundle: ArrayBuffer }[];
  /** The face detector's ONNX graph as a Data module, when the build ships one. */
  detector?: { file: string; onnx: ArrayBuffer };
  build: BuildInfo;
  /** How int8 bundles run (default "weights": dequantised, as `deno task serve`). */
  int8?: Int8Mode;
}

/** A module worker (`export default`) serving the face API from D1. */
export function createWorker(
  assets: WorkerAssets,
): { fetch(req: Request, env: WorkerEnv): Promise<Response> } {
  let engine: Promise<Engine> | null = null;
  const getEngine = () => {
    engine ??= timedWasmEngine({ ortWasm: { module: assets.ortWasm } });
    engine.catch(() => (engine = null));
    return engine;
  };
  const fetch = createEdgeHandler<WorkerEnv>({
    check(env) {
      const db = env.DB;
      if (!db || typeof (db as { prepare?: unknown }).prepare !== "function") {
        throw new ConfigError(
          "D1 binding 'DB' is missing: add it under d1_databases in wrangler.jsonc " +
            "(npx wrangler d1 create repmlp-gallery, then set database_id) and apply migrations/",
        );
      }
      if (!env.API_KEYS?.trim()) {
        throw new ConfigError(
          "API_KEYS is not set: run `npx wrangler secret put API_KEYS` (comma-separated keys, ≥ 8 characters); " +
            "for wrangler dev put API_KEYS=… in .dev.vars",
        );
      }
    },
    // deno-lint-ignore require-await
    async init(env) {
      if (!(assets.ortWasm instanceof WebAssembly.Module)) {
        throw new ConfigError(
          "ort-wasm-simd-threaded.wasm is not a compiled WebAssembly module: it must be uploaded as a " +
            "CompiledWasm module (rules in wrangler.jsonc); rebuild with `deno task build`",
        );
      }
      const get = (k: string) => (typeof env[k] === "string" ? env[k] as string : undefined);
      const models = loadEdgeModels(
        assets.models.map((m) => ({
          info: m.info,
          file: m.file,
          onnx: () => graphOfBundle(new Uint8Array(m.bundle), m.info.inputSize, assets.int8),
        })),
        { get: getEngine, backend: () => "wasm" },
      );
      const lazy = { get: getEngine, backend: () => "wasm" };
      const det = assets.detector;
      const faceDetector = det
        ? edgeDetector(lazy, () => Promise.resolve(new Uint8Array(det.onnx)))
        : undefined;
      return {
        models,
        store: new D1Store(env.DB!),
        apiKeys: parseConfig(get, { backend: "wasm" }).apiKeys,
        options: { ...appOptionsFromEnv(get), faceDetector },
      };
    },
    health: () => ({ target: "cloudflare", wasmMemoryBytes: ortWasmMemoryBytes(), build: assets.build }),
  });
  return { fetch };
}
