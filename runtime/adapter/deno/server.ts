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
 * `$DATA_DIR/gallery.kv` when DATA_DIR is set — that needs `--allow-write` too). Env: `API_KEYS`
 * (comma-separated; required), `DATA_DIR`, and as for `deno task serve`: RATE_LIMIT_RPM, CORS_ORIGINS,
 * MAX_BODY_BYTES, MAX_PIXELS.
 */
import { KvStore } from "../../src/server/store/kv.ts";
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

/** A file shipped beside the entry (path relative to it) or its bytes inlined by the build. */
export type Asset = string | Uint8Array;

/** What the generated entry passes in. */
export interface ServerAssets {
  /** `import.meta.url` of the generated entry: relative asset paths resolve against it. */
  base: string;
  ortWasm: Asset;
  models: { entry: ModelAsset["entry"]; file: string; data: Asset }[];
  build: BuildInfo;
  /** How int8 bundles run (default "weights": dequantised at load). */
  int8?: Int8Mode;
}

async function read(base: string, a: Asset, what: string): Promise<Uint8Array> {
  if (typeof a !== "string") return a;
  const url = new URL(a, base);
  try {
    return await Deno.readFile(url);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new EdgeConfigError(
        `${what} not found at ${url.pathname}: ship it beside server.mjs (deno task build)`,
      );
    }
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      throw new EdgeConfigError(`cannot read ${url.pathname}: run deno serve with --allow-read`);
    }
    throw e;
  }
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    throw new EdgeConfigError(`cannot read env ${name}: run deno serve with --allow-env`);
  }
}

/** The `deno serve` default export. */
export function createServer(assets: ServerAssets): { fetch(req: Request): Promise<Response> } {
  const handler = createEdgeHandler<void>({
    check() {
      if (!env("API_KEYS")?.trim()) {
        throw new EdgeConfigError(
          "API_KEYS is not set: export API_KEYS=<key>[,<key>…] (each ≥ 8 characters); on Deno Deploy add it " +
            "under the project's environment variables",
        );
      }
    },
    async init() {
      if (typeof Deno.openKv !== "function") {
        throw new EdgeConfigError("Deno KV is unavailable: run deno serve with --unstable-kv");
      }
      const wasmBinary = await read(assets.base, assets.ortWasm, "ort-wasm-simd-threaded.wasm");
      if (wasmBinary.length < 8 || wasmBinary[0] !== 0 || wasmBinary[1] !== 0x61) {
        throw new EdgeConfigError(
          "ort-wasm-simd-threaded.wasm is not a WebAssembly binary: rebuild with deno task build",
        );
      }
      const models = await loadEdgeModels(
        await Promise.all(
          assets.models.map(async (m) => ({
            entry: m.entry,
            file: m.file,
            bytes: await read(assets.base, m.data, `weights ${m.file}`),
          })),
        ),
        { wasmBinary },
        assets.int8 ?? "weights",
      );
      const dir = env("DATA_DIR");
      const store = await KvStore.open(dir ? `${dir.replace(/\/$/, "")}/gallery.kv` : undefined);
      const apiKeys = env("API_KEYS")!.split(",").map((k) => k.trim()).filter(Boolean);
      return { models, store, apiKeys, options: appOptionsFromEnv(env) };
    },
    health: () => ({ target: "deno", wasmMemoryBytes: ortWasmMemoryBytes(), build: assets.build }),
  });
  return { fetch: (req) => handler(req, undefined) };
}
