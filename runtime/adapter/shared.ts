/**
 * Platform-neutral part of the edge entry points: the models the build prepared (served-model info +
 * the ONNX graph built at build time from the same bundle `deno task serve` loads) → lazily created
 * ORT sessions → the Hono app. The Deno and Cloudflare entries differ only in how they obtain the ORT
 * binary, the graphs, the gallery store and the configuration.
 *
 * Cold start: nothing model-related runs before the first request, and each model's session is
 * created on its first use (a classifier is not needed for the first embed). {@link coldStart} records
 * where the time went; `/healthz` → `edge.coldStart` serves it (read by `deno task bench:edge`).
 */
import { FaceDetector } from "../src/face/detect.ts";
import { type AppOptions, createApp } from "../src/server/app.ts";
import { playgroundHandler } from "../src/server/playground.ts";
import type { ClassifierModel, FaceModel } from "../src/server/served_model.ts";
import type { GalleryStore } from "../src/server/store/types.ts";
import { servedModelFromForward, type ServedModelInfo } from "../src/server/model_info.ts";
import type { ServedEntry } from "../src/server/manifest.ts";
import type { Engine, EngineOptions, EngineSession } from "../src/backends/engine.ts";
import { ortWebEngine, ortWebWasmMs } from "../src/backends/ort_web.ts";
import { RepmlpError } from "../src/errors.ts";
import { ConfigError, parseConfig } from "./config.ts";

export { ConfigError as EdgeConfigError } from "./config.ts";

/** What `deno task build` records about a build; served under `/healthz` → `build`. */
export interface BuildInfo {
  target: "deno" | "cloudflare";
  builtAt: string;
  /** Shipped models: graph file (relative to the entry), source bundle's name, dtype and SHA-256. */
  models: {
    file: string;
    name: string;
    task: string;
    dtype: string;
    sha256: string;
    bytes: number;
  }[];
  /** The face detector's ONNX graph (file relative to the entry), when the build ships one. */
  detector?: { file: string; name: string; sha256: string; bytes: number };
}

/** A weight bundle's serving fields (as in weights/manifest.json). */
export type ModelEntry = ServedEntry;

/** A model as the build ships it: what the app needs to know, and its ONNX graph (read on first use). */
export interface EdgeModel {
  info: ServedModelInfo;
  /** Graph file, for error messages. */
  file: string;
  /** The ONNX graph bytes (read or decoded on the model's first use). */
  onnx(): Promise<Uint8Array>;
}

/** Served models. */
export interface EdgeModels {
  faceModels: FaceModel[];
  classifiers: ClassifierModel[];
  /**
   * Create the session of the first model of `task` and run it once on zeros, ahead of the first
   * request (a failure is left for that request to retry and report).
   */
  preload?(task: string): Promise<void>;
}

/** Cold-start timings of this isolate/process in ms (null: not reached or not measurable here). */
export interface ColdStart {
  /** `performance.now()` when the bundle's first module ran (Deno: ms since process start; workerd: 0). */
  moduleStartMs: number | null;
  /** Bundle evaluation: first module → entry created. */
  moduleEvalMs: number | null;
  /** First request: store, keys and app set up (no model work). */
  appInitMs: number | null;
  /** ORT wasm compiled in the background from the first module (Deno): ms after moduleStartMs it was ready. */
  wasmCompileReadyMs: number | null;
  /** ORT engine load on first use: wasm instantiate (+ compile when not pre-compiled); native: addon load. */
  wasmMs: number | null;
  /** First model: ORT runtime init + session create/optimise (wasm time excluded). */
  firstSessionMs: number | null;
  /** First model: reading its graph. */
  graphReadMs: number | null;
  /** First model: first inference. */
  firstRunMs: number | null;
  /** Which model was first, and the backend that runs it. */
  firstModel: string | null;
  backend: string | null;
}

/** This process's cold-start record (one per isolate). */
export const coldStart: ColdStart = {
  moduleStartMs: (globalThis as { __repmlpEdgeT0?: number }).__repmlpEdgeT0 ?? null,
  moduleEvalMs: null,
  wasmCompileReadyMs: null,
  appInitMs: null,
  wasmMs: null,
  firstSessionMs: null,
  graphReadMs: null,
  firstRunMs: null,
  firstModel: null,
  backend: null,
};

/** Mark the end of module evaluation (the entry calls it when it creates the handler). */
export function markModuleEvaluated(): void {
  if (coldStart.moduleStartMs !== null && coldStart.moduleEvalMs === null) {
    coldStart.moduleEvalMs = performance.now() - coldStart.moduleStartMs;
  }
}

/**
 * ORT-web on wasm (one thread), with its wasm compile + instantiate (inside the first session
 * creation) recorded as its own cold-start phase.
 */
export async function timedWasmEngine(o: Omit<EngineOptions, "threads">): Promise<Engine> {
  const e = await ortWebEngine("wasm", { ...o, threads: 1 });
  return {
    provider: e.provider,
    async create(model: Uint8Array) {
      const s = await e.create(model);
      coldStart.wasmMs ??= ortWebWasmMs();
      return s;
    },
  };
}

/** An ORT engine obtained once on first use, with the wasm time it took. */
export interface LazyEngine {
  get(): Promise<Engine>;
  /** Backend name the models report ("wasm", "native"). */
  backend(): string;
}

/**
 * The face detector on the edge's ORT engine, created on first use (createApp's `faceDetector`
 * loader; a failed load is retried by the next request).
 */
export function edgeDetector(
  engine: LazyEngine,
  onnx: () => Promise<Uint8Array>,
): () => Promise<FaceDetector> {
  return async () => {
    const e = await engine.get();
    const s = await e.create(await onnx());
    return FaceDetector.fromSession({
      backend: engine.backend(),
      runAll: (d, dims) => s.runAll(d, dims),
      release: () => s.release(),
    });
  };
}

/**
 * Served models whose ORT sessions are created on first use. A failed creation is retried on the
 * next call (the error reaches that request).
 */
export function loadEdgeModels(models: EdgeModel[], engine: LazyEngine): EdgeModels {
  const warmers = new Map<string, () => Promise<void>>();
  const out: EdgeModels = {
    faceModels: [],
    classifiers: [],
    preload: (task) => warmers.get(task)?.() ?? Promise.resolve(),
  };
  for (const m of models) {
    let session: Promise<EngineSession> | null = null;
    const open = async () => {
      const e = await engine.get();
      const t0 = performance.now();
      const bytes = await m.onnx();
      const t1 = performance.now();
      const s = await e.create(bytes);
      const first = coldStart.firstModel === null;
      if (first) {
        coldStart.firstModel = m.info.name;
        coldStart.backend = engine.backend();
        coldStart.graphReadMs = t1 - t0;
        coldStart.firstSessionMs = performance.now() - t1;
      }
      return { s, first };
    };
    let firstRunPending = true;
    const run = async (x: Float32Array, shape: [number, number, number, number]) => {
      let first = false;
      if (!session) {
        const p = open().catch((e) => {
          session = null;
          throw e instanceof RepmlpError
            ? e
            : new RepmlpError("runtime", `cannot load ${m.file}: ${e?.message ?? e}`);
        });
        session = p.then((r) => (first = r.first, r.s));
      }
      const s = await session;
      const t = performance.now();
      const y = await s.run(x, shape);
      if (first && firstRunPending) coldStart.firstRunMs = performance.now() - t;
      firstRunPending = false;
      return y.data;
    };
    if (!warmers.has(m.info.task)) {
      const [c, h, w] = m.info.inputSize;
      warmers.set(m.info.task, async () => void await run(new Float32Array(c * h * w), [1, c, h, w]));
    }
    const model = servedModelFromForward(m.info, run, engine.backend());
    // The backend is known once the engine loaded (native may fall back to wasm).
    Object.defineProperty(model, "backend", { get: () => engine.backend(), enumerable: true });
    if (m.info.task === "face") out.faceModels.push(model as FaceModel);
    else if (m.info.task === "classifier") out.classifiers.push(model as ClassifierModel);
  }
  return out;
}

/** App options from environment variables (the one parser, {@link parseConfig}), plus the playground. */
export function appOptionsFromEnv(get: (name: string) => string | undefined): Partial<AppOptions> {
  return { ...parseConfig(get, { backend: "wasm" }).app, playground: () => playgroundHandler() };
}

/** Options of {@link createEdgeHandler}. */
export interface EdgeHandlerOptions<E> {
  /** Called once per isolate on the first request: models, store, keys (throw ConfigError). */
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
  markModuleEvaluated();
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
      const start = performance.now();
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
          throw new ConfigError((e as Error).message);
        }
        coldStart.appInitMs = performance.now() - start;
        return a;
      });
      // Configuration errors stay until a redeploy/restart (a new isolate); anything else is retried.
      app.catch((e) => {
        if (!(e instanceof ConfigError)) app = null;
      });
    }
    let a;
    try {
      a = await app;
    } catch (e) {
      const msg = (e as Error).message ?? String(e);
      console.error(JSON.stringify({ level: "error", msg: "startup failed", error: msg }));
      return e instanceof ConfigError
        ? configErrorResponse(msg)
        : Response.json({ error: { code: "startup_failed", message: msg } }, { status: 500 });
    }
    const res = await a.fetch(req);
    if (new URL(req.url).pathname === "/healthz" && res.ok) {
      const body = await res.json();
      const headers = new Headers(res.headers);
      headers.delete("content-length");
      const round = (v: number | null) => (typeof v === "number" ? Math.round(v * 10) / 10 : v);
      const cs: Record<string, unknown> = Object.fromEntries(
        Object.entries(coldStart).map(([k, v]) => [k, round(v as number)]),
      );
      cs.timeOrigin = performance.timeOrigin;
      const edge = {
        initMs: round(coldStart.appInitMs),
        isolateAgeMs: Date.now() - t0,
        coldStart: cs,
        ...opts.health?.(),
      };
      return new Response(JSON.stringify({ ...body, edge }), { status: res.status, headers });
    }
    return res;
  };
}
