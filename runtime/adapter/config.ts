/**
 * The one parser of the server's environment variables, for every way the face API runs:
 * `deno task serve`, `deno serve dist/deno/server.mjs` (Deno Deploy) and the Cloudflare Worker
 * (vars and secrets). Each entry point reads the fields that apply to it; a bad value is a
 * {@link ConfigError} naming the variable.
 *
 * | variable | meaning | default |
 * | --- | --- | --- |
 * | `API_KEYS` | comma-separated bearer keys | none (serve generates one) |
 * | `RATE_LIMIT_RPM` | requests per minute per key, 0 = off | 600 |
 * | `CORS_ORIGINS` | comma-separated origins or `*` | none |
 * | `MAX_BODY_BYTES` / `MAX_PIXELS` | request limits | 5242880 / 40000000 |
 * | `BACKEND` | auto, webgpu, wasm, native, reference | auto (serve), wasm (edge builds) |
 * | `DATA_DIR` | gallery (+ generated key for serve) | ./.data (serve), DENO_DIR KV (dist/deno) |
 * | `PORT` / `HOST` | listen address (serve, dist/deno `main.mjs`) | 8000 / 127.0.0.1 |
 * | `WEIGHTS` / `MODEL` / `CLASSIFIER` / `DTYPE` | serve: manifest, bundles, dtype | weights/manifest.json, manifest defaults, int8 |
 */
import type { AppOptions } from "../src/server/app.ts";
import type { Backend } from "../src/backends/mod.ts";
import { DEFAULT_BUNDLE_DTYPE } from "../src/server/manifest.ts";

/** A configuration problem that makes the deployment unusable; its message says how to fix it. */
export class ConfigError extends Error {
  /** Stable code for the JSON error body. */
  readonly code = "misconfigured";
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

// Not BACKENDS from backends/mod.ts: importing that module would pull the ONNX graph builder into the
// edge bundles. `satisfies` keeps this list exactly the Backend union.
const BACKEND_SET = { auto: 1, webgpu: 1, wasm: 1, native: 1, reference: 1 } satisfies Record<Backend, 1>;
const BACKEND_NAMES = Object.keys(BACKEND_SET) as Backend[];

/** Bundle dtypes a target can be asked to serve (`keep`: as the manifest/bundle stores it). */
export const DTYPES = ["int8", "fp16", "fp32", "keep"] as const;

/** Parsed environment. */
export interface ServerConfig {
  /** API_KEYS, split and trimmed (empty when unset). */
  apiKeys: string[];
  /** BACKEND. */
  backend: Backend;
  /** DTYPE: bundle dtype to pick from the manifest. */
  dtype: (typeof DTYPES)[number];
  /** DATA_DIR (unset: the caller's default). */
  dataDir?: string;
  /** PORT and HOST. */
  port: number;
  host: string;
  /** WEIGHTS, MODEL, CLASSIFIER (`none` = no classifier). */
  weights?: string;
  model?: string;
  classifier?: string;
  /** DETECTOR: face detector ONNX path, or `none` (unset: the manifest's default detector). */
  detector?: string;
  /** App options from RATE_LIMIT_RPM, CORS_ORIGINS, MAX_BODY_BYTES, MAX_PIXELS. */
  app: Pick<AppOptions, "rateLimit" | "cors" | "maxBodyBytes" | "maxPixels">;
}

/** Parse the environment (`get` returns a variable or undefined). Bad values → {@link ConfigError}. */
export function parseConfig(
  get: (name: string) => string | undefined,
  defaults: { backend?: Backend } = {},
): ServerConfig {
  const str = (k: string) => get(k)?.trim() || undefined;
  const int = (k: string, d: number) => {
    const raw = str(k);
    const v = raw === undefined ? d : Number(raw);
    if (!Number.isInteger(v) || v < 0) {
      throw new ConfigError(`${k} must be a non-negative integer, got '${raw}'`);
    }
    return v;
  };
  const oneOf = <T extends string>(k: string, all: readonly T[], d: T): T => {
    const v = str(k) ?? d;
    if (!all.includes(v as T)) throw new ConfigError(`${k} must be one of ${all.join(", ")}, got '${v}'`);
    return v as T;
  };
  const rpm = int("RATE_LIMIT_RPM", 600);
  const cors = str("CORS_ORIGINS");
  return {
    apiKeys: (get("API_KEYS") ?? "").split(",").map((k) => k.trim()).filter(Boolean),
    backend: oneOf("BACKEND", BACKEND_NAMES, defaults.backend ?? "auto"),
    dtype: oneOf("DTYPE", DTYPES, DEFAULT_BUNDLE_DTYPE),
    dataDir: str("DATA_DIR"),
    port: int("PORT", 8000),
    host: str("HOST") ?? "127.0.0.1",
    weights: str("WEIGHTS"),
    model: str("MODEL"),
    classifier: str("CLASSIFIER"),
    detector: str("DETECTOR"),
    app: {
      rateLimit: rpm === 0 ? false : { requestsPerMinute: rpm, burst: Math.max(10, Math.ceil(rpm / 6)) },
      cors: cors ? { origins: cors === "*" ? "*" : cors.split(",").map((o) => o.trim()) } : undefined,
      maxBodyBytes: int("MAX_BODY_BYTES", 5 * 2 ** 20),
      maxPixels: int("MAX_PIXELS", 40_000_000),
    },
  };
}
