/**
 * Platform-neutral part of the edge entry points: bundle bytes → served models (onnxruntime-web,
 * wasm, one thread) → the Hono app. The Deno and Cloudflare entries only differ in how they obtain
 * the ORT binary, the weights, the gallery store and the configuration.
 */
import { type AppOptions, createApp } from "../src/server/app.ts";
import { playgroundHandler } from "../src/server/playground.ts";
import type { ClassifierModel, FaceModel } from "../src/server/served_model.ts";
import type { GalleryStore } from "../src/server/store/types.ts";
import { type ManifestEntry, servedModelFromBundle } from "../src/server/bundles.ts";
import type { SessionOptions } from "../src/backends/mod.ts";

/** What `deno task build` records about a build; served under `/healthz` → `build`. */
export interface BuildInfo {
  target: "deno" | "cloudflare";
  builtAt: string;
  /** Shipped weight files (relative to the entry), with dtype and SHA-256 from the bundle. */
  models: {
    file: string;
    name: string;
    task: "face" | "classifier";
    dtype: string;
    sha256: string;
    bytes: number;
  }[];
}

/** A weight bundle handed to the entry point. */
export interface ModelAsset {
  /** Name, task, threshold/labels overrides, as in weights/manifest.json. */
  entry: Pick<ManifestEntry, "name" | "task" | "threshold" | "labels" | "metrics">;
  /** File name, for error messages. */
  file: string;
  bytes: Uint8Array;
}

/** Served models built from bundles. */
export interface EdgeModels {
  faceModels: FaceModel[];
  classifiers: ClassifierModel[];
}

/** A startup problem that makes the deployment unusable; its message says how to fix it. */
export class EdgeConfigError extends Error {
  /** Stable code for the JSON error body. */
  readonly code = "misconfigured";
  constructor(message: string) {
    super(message);
    this.name = "EdgeConfigError";
  }
}

/** How the edge runs int8 bundles (see docs/edge.md for the measured trade-off). */
export type Int8Mode = "weights" | "dynamic";

/**
 * Load every bundle exactly as `deno task serve` does (servedModelFromBundle), on ORT-web wasm with one
 * thread. `ortWasm` tells ORT where its binary is: a compiled module on Workers, bytes on Deno.
 */
export async function loadEdgeModels(
  assets: ModelAsset[],
  ortWasm: SessionOptions["ortWasm"],
  quant: Int8Mode = "weights",
): Promise<EdgeModels> {
  const out: EdgeModels = { faceModels: [], classifiers: [] };
  for (const a of assets) {
    let m;
    try {
      m = await servedModelFromBundle(a.bytes, a.entry, {
        backend: "wasm",
        ortWasm,
        quant,
        log: (msg) => console.warn(`[repmlp-edge] ${msg}`),
      });
    } catch (e) {
      throw new EdgeConfigError(`cannot load ${a.file}: ${(e as Error).message}`);
    }
    if (m.task === "face") out.faceModels.push(m.model as FaceModel);
    else out.classifiers.push(m.model as ClassifierModel);
  }
  return out;
}

/**
 * App options from environment variables, with the meanings and defaults of `deno task serve`:
 * RATE_LIMIT_RPM, CORS_ORIGINS, MAX_BODY_BYTES, MAX_PIXELS. Bad values → EdgeConfigError.
 */
export function appOptionsFromEnv(get: (name: string) => string | undefined): Partial<AppOptions> {
  const int = (k: string, d: number) => {
    const raw = get(k)?.trim();
    const v = raw ? Number(raw) : d;
    if (!Number.isInteger(v) || v < 0) {
      throw new EdgeConfigError(`${k} must be a non-negative integer, got '${raw}'`);
    }
    return v;
  };
  const rpm = int("RATE_LIMIT_RPM", 600);
  const cors = get("CORS_ORIGINS")?.trim();
  return {
    rateLimit: rpm === 0 ? false : { requestsPerMinute: rpm, burst: Math.max(10, Math.ceil(rpm / 6)) },
    cors: cors ? { origins: cors === "*" ? "*" : cors.split(",").map((o) => o.trim()) } : undefined,
    maxBodyBytes: int("MAX_BODY_BYTES", 5 * 2 ** 20),
    maxPixels: int("MAX_PIXELS", 40_000_000),
    playground: () => playgroundHandler(),
  };
}

/** Options of {@link createEdgeHandler}. */
export interface EdgeHandlerOptions<E> {
  /** Called once per isolate on the first request: build models, store, keys (throw EdgeConfigError). */
  init(
    env: E,
  ): Promise<{ models: EdgeModels; store: GalleryStore; apiKeys: string[]; options?: Partial<AppOptions> }>;
  /** Checked on every request before init (cheap): e.g. a missing binding. */
  check?(env: E): void;
  /** Extra `/healthz` fields. */
  health?(): Record<string, unknown>;
}

function configErrorResponse(message: string): Response {
  return Response.json({ error: { code: "misconfigured", message } }, { status: 500 });
}

/**
 * A `fetch(request, env)` that initialises the app once per isolate (lazily, so startup stays within
 * platform limits) and answers every request with a clear JSON error while the deployment is
 * misconfigured. A failed init is retried on the next request unless it was a configuration error.
 */
export function createEdgeHandler<E>(opts: EdgeHandlerOptions<E>) {
  let app: Promise<{ fetch(req: Request): Response | Promise<Response> }> | null = null;
  const t0 = Date.now();
  let initMs = -1;
  return async function fetch(req: Request, env: E): Promise<Response> {
    try {
      opts.check?.(env);
    } catch (e) {
      console.error(
        JSON.stringify({ level: "error", msg: "misconfigured", error: String((e as Error).message) }),
      );
      return configErrorResponse((e as Error).message);
    }
    if (!app) {
      const start = Date.now();
      app = opts.init(env).then(({ models, store, apiKeys, options }) => {
        let a;
        try {
          a = createApp({
            ...options,
            faceModels: models.faceModels,
            classifiers: models.classifiers,
            store,
            apiKeys,
          });
        } catch (e) {
          // e.g. a key shorter than 8 characters: a configuration problem, not a crash.
          throw new EdgeConfigError((e as Error).message);
        }
        initMs = Date.now() - start;
        return a;
      });
      // Configuration errors stay until a redeploy/restart (a new isolate); anything else is retried.
      app.catch((e) => {
        if (!(e instanceof EdgeConfigError)) app = null;
      });
    }
    let a;
    try {
      a = await app;
    } catch (e) {
      const msg = (e as Error).message ?? String(e);
      console.error(JSON.stringify({ level: "error", msg: "startup failed", error: msg }));
      return e instanceof EdgeConfigError
        ? configErrorResponse(msg)
        : Response.json({ error: { code: "startup_failed", message: msg } }, { status: 500 });
    }
    const res = await a.fetch(req);
    if (new URL(req.url).pathname === "/healthz" && res.ok) {
      const body = await res.json();
      const headers = new Headers(res.headers);
      headers.delete("content-length");
      const edge = { initMs, isolateAgeMs: Date.now() - t0, ...opts.health?.() };
      return new Response(JSON.stringify({ ...body, edge }), { status: res.status, headers });
    }
    return res;
  };
}
