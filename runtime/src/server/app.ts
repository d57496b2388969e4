/**
 * The face-recognition HTTP API as a platform-neutral Hono app, composed from `middleware/` and
 * `routes/`. Models, storage, keys and limits come in through {@link AppOptions}; the same app
 * object serves `Deno.serve(app.fetch)` and a Cloudflare Worker's `fetch`.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { requestId } from "hono/request-id";
import { secureHeaders } from "hono/secure-headers";
import { InvalidArgumentError } from "../errors.ts";
import type { FaceDetector } from "../face/detect.ts";
import type { AppEnv, AppOptions, LogEntry, ServerDeps } from "./context.ts";
import { ApiError } from "./api_errors.ts";
import { DEFAULT_MAX_PIXELS } from "../image/mod.ts";
import { zodMessage } from "./input.ts";
import { accessLog } from "./middleware/access_log.ts";
import { apiKeyAuth, validateApiKeys } from "./middleware/auth.ts";
import { bodyLimit } from "./middleware/body_limit.ts";
import { crossOrigin } from "./middleware/cors.ts";
import { allowedMethods, notFound, onError } from "./middleware/errors.ts";
import { rateLimit } from "./middleware/rate_limit.ts";
import { TokenBucketLimiter } from "./token_bucket.ts";
import { classifyRoutes } from "./routes/classify.ts";
import { collectionRoutes } from "./routes/collections.ts";
import { docsRoutes } from "./routes/docs.ts";
import { faceRoutes } from "./routes/faces.ts";
import { SearchIndex } from "./search.ts";

export type { AppEnv, AppOptions, HonoApp, LogEntry, PlaygroundHandler, RequestContext } from "./context.ts";
export { parseLandmarks } from "./input.ts";

/**
 * The app {@link createApp} returns (an `OpenAPIHono` with {@link AppEnv}), as callers use it: hand
 * `app.fetch` to `Deno.serve` or export it as a Worker's `fetch`; `app.request` runs a request in process.
 * Routes are added through {@link AppOptions.extraRoutes}, which gets the full Hono app.
 */
export interface HttpApp {
  /** Answer one request (`Deno.serve` handler, Workers `fetch(request, env, ctx)`). */
  fetch(request: Request, env?: unknown, executionCtx?: unknown): Response | Promise<Response>;
  /** Answer a request given as a path (resolved against `http://localhost`), URL or Request; for tests. */
  request(input: RequestInfo | URL, init?: RequestInit): Response | Promise<Response>;
}

/**
 * Build the API. Routes: `GET /healthz`, `GET /openapi.json`, `GET /docs`, `GET /` (playground hook),
 * and under `/v1` (Bearer key): models, faces/embed, faces/compare, collections CRUD, enrol, list,
 * delete, search, classify. See docs/api.md for the contract.
 */
export function createApp(options: AppOptions): HttpApp {
  const d = serverDeps(options);
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (r) => {
      if (!r.success) throw new ApiError("invalid_request", zodMessage(r.error));
    },
  });
  app.onError(onError(d.log, d.maxBodyBytes));
  app.notFound(notFound);
  app.use(requestId(), accessLog(d.log), allowedMethods(), secureHeaders(), ...crossOrigin(options.cors));
  if (options.apiKeys?.length) app.use("/v1/*", apiKeyAuth(options.apiKeys));
  const limiter = options.rateLimit === false
    ? null
    : options.rateLimit && "take" in options.rateLimit
    ? options.rateLimit
    : new TokenBucketLimiter(options.rateLimit ?? { requestsPerMinute: 600, burst: 100 });
  if (limiter) app.use("/v1/*", rateLimit(limiter, d.now));
  app.use("/v1/*", bodyLimit(d.maxBodyBytes));
  docsRoutes(app, d, options);
  faceRoutes(app, d);
  collectionRoutes(app, d);
  classifyRoutes(app, d);
  return app;
}

/** Check the options and build the services every route shares. */
function serverDeps(o: AppOptions): ServerDeps {
  const faceModels = o.faceModels ?? [], classifiers = o.classifiers ?? [];
  const names = [...faceModels, ...classifiers].map((m) => m.name);
  if (new Set(names).size !== names.length) {
    throw new InvalidArgumentError(`model names must be unique: ${names}`);
  }
  if (!o.apiKeys?.length && !o.allowAnonymous) {
    throw new InvalidArgumentError(
      "createApp: no API keys configured",
      "pass apiKeys (e.g. from env API_KEYS), or allowAnonymous: true for a local experiment",
    );
  }
  validateApiKeys(o.apiKeys ?? []);
  const det = o.faceDetector;
  let loading: Promise<FaceDetector> | null = null;
  const detector = !det ? null : typeof det === "function"
    ? () =>
      loading ??= det().catch((e) => {
        loading = null; // a failed load is retried by the next request
        throw e;
      })
    : () => Promise.resolve(det);
  return {
    faceModels,
    detector,
    classifiers,
    store: o.store,
    index: new SearchIndex(o.store, o.searchCacheBytes),
    maxBodyBytes: o.maxBodyBytes ?? 5 * 2 ** 20,
    maxPixels: o.maxPixels ?? DEFAULT_MAX_PIXELS,
    idempotencyTtlMs: (o.idempotencyTtlS ?? 24 * 3600) * 1000,
    now: o.now ?? Date.now,
    log: o.log ?? ((e: LogEntry) => console.log(JSON.stringify(e))),
  };
}
