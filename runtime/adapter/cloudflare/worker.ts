/**
 * Cloudflare Workers entry. `deno task build` generates the real module entry, which imports the
 * ORT binary as a CompiledWasm module and each weight bundle as a Data module (an ArrayBuffer), and
 * passes them here:
 *
 * ```js
 * import ortWasm from "./ort-wasm-simd-threaded.wasm";
 * import face from "./models/face.safetensors";
 * export default createWorker({
 *   ortWasm,
 *   models: [{ entry: { name: "face", task: "face" }, file: "models/face.safetensors", bytes: face }],
 *   build,
 * });
 * ```
 *
 * Bindings (wrangler.jsonc): `DB` (D1, the face gallery; schema in `migrations/`), secret `API_KEYS`
 * (comma-separated), optional vars `RATE_LIMIT_RPM`, `CORS_ORIGINS`, `MAX_BODY_BYTES`, `MAX_PIXELS`.
 */
import { type D1DatabaseLike, D1Store } from "../../src/server/store/d1.ts";
import { ortWasmMemoryBytes } from "../../src/backends/mod.ts";
import {
  appOptionsFromEnv,
  type BuildInfo,
  createEdgeHandler,
  EdgeConfigError,
  type Int8Mode,
  loadEdgeModels,
  type ModelAsset,
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
  /** Weight bundles, imported as Data modules (ArrayBuffer). */
  models: { entry: ModelAsset["entry"]; file: string; bytes: ArrayBuffer }[];
  build: BuildInfo;
  /** How int8 bundles run (default "weights": dequantised at load). */
  int8?: Int8Mode;
}

/** A module worker (`export default`) serving the face API from D1. */
export function createWorker(
  assets: WorkerAssets,
): { fetch(req: Request, env: WorkerEnv): Promise<Response> } {
  const fetch = createEdgeHandler<WorkerEnv>({
    check(env) {
      const db = env.DB;
      if (!db || typeof (db as { prepare?: unknown }).prepare !== "function") {
        throw new EdgeConfigError(
          "D1 binding 'DB' is missing: add it under d1_databases in wrangler.jsonc " +
            "(npx wrangler d1 create repmlp-gallery, then set database_id) and apply migrations/",
        );
      }
      if (!env.API_KEYS?.trim()) {
        throw new EdgeConfigError(
          "API_KEYS is not set: run `npx wrangler secret put API_KEYS` (comma-separated keys, ≥ 8 characters); " +
            "for wrangler dev put API_KEYS=… in .dev.vars",
        );
      }
    },
    async init(env) {
      if (!(assets.ortWasm instanceof WebAssembly.Module)) {
        throw new EdgeConfigError(
          "ort-wasm-simd-threaded.wasm is not a compiled WebAssembly module: it must be uploaded as a " +
            "CompiledWasm module (rules in wrangler.jsonc); rebuild with `deno task build`",
        );
      }
      const models = await loadEdgeModels(
        assets.models.map((m) => ({ entry: m.entry, file: m.file, bytes: new Uint8Array(m.bytes) })),
        { module: assets.ortWasm },
        assets.int8 ?? "weights",
      );
      const apiKeys = env.API_KEYS!.split(",").map((k) => k.trim()).filter(Boolean);
      const options = appOptionsFromEnv((k) => (typeof env[k] === "string" ? env[k] as string : undefined));
      return { models, store: new D1Store(env.DB!), apiKeys, options };
    },
    health: () => ({ target: "cloudflare", wasmMemoryBytes: ortWasmMemoryBytes(), build: assets.build }),
  });
  return { fetch };
}
