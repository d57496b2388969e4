/**
 * What the app's middleware and routes share: the options of {@link createApp}, the Hono env
 * (context variables) and {@link ServerDeps}, the services built once from the options.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { FaceDetector } from "../face/detect.ts";
import { ApiError } from "./api_errors.ts";
import type { RateLimiter } from "./token_bucket.ts";
import type { SearchIndex } from "./search.ts";
import type { ClassifierModel, FaceModel } from "./served_model.ts";
import type { GalleryStore } from "./store/types.ts";

/** One structured log line (JSON). Never contains API keys or image data. */
export interface LogEntry {
  /** ISO-8601 time of the entry. */
  ts: string;
  /** Severity: `error` for 5xx and unhandled errors, `warn` for 4xx, else `info`. */
  level: "info" | "warn" | "error";
  /** What happened ("request", "unhandled error"). */
  msg: string;
  /** Request id (also sent as the `X-Request-Id` header). */
  reqId?: string;
  /** HTTP method. */
  method?: string;
  /** Request path. */
  path?: string;
  /** Response status code. */
  status?: number;
  /** Handling time in milliseconds. */
  ms?: number;
  /** Fingerprint of the API key (first 8 hex digits of its SHA-256), never the key. */
  key?: string;
  /** API error code of a failed request (`x-error-code`). */
  code?: string;
  /** Name, message and stack of an unhandled error. */
  error?: string;
}

/** Options of {@link createApp}. */
export interface AppOptions {
  /** Face models; the first is the default. At least one is needed for the face endpoints. */
  faceModels: FaceModel[];
  /** Classifier models for `/v1/classify`; the first is the default. */
  classifiers?: ClassifierModel[];
  /**
   * Face detector (or a loader, called once on first use): images sent without landmarks are
   * searched for faces and `/v1/faces/detect` is served. Without one, such images are centre-cropped
   * (the response's `face` is null) and `/v1/faces/detect` answers `not_found`.
   */
  faceDetector?: FaceDetector | (() => Promise<FaceDetector>);
  /** Gallery storage (MemoryStore, KvStore, D1Store …). */
  store: GalleryStore;
  /** Accepted API keys (`Authorization: Bearer <key>`). Empty is refused unless `allowAnonymous`. */
  apiKeys: string[];
  /** Serve /v1 without keys (local experiments only). Default false. */
  allowAnonymous?: boolean;
  /** Request body cap in bytes (default 5 MiB) → `payload_too_large`. */
  maxBodyBytes?: number;
  /** Pixel cap checked on the image header before decoding (default 40 MP) → `image_too_large`. */
  maxPixels?: number;
  /** Per-key limit (default 600/min, burst 100); `false` disables; or any {@link RateLimiter}. */
  rateLimit?: { requestsPerMinute: number; burst?: number } | RateLimiter | false;
  /** CORS for browser clients on other origins (default: no CORS headers). */
  cors?: { origins: string[] | "*"; maxAgeS?: number };
  /** Log sink (default: one JSON line per entry on stdout). */
  log?: (e: LogEntry) => void;
  /** Handler for `GET /` (the playground page). Default: a JSON pointer to /docs. */
  playground?: PlaygroundHandler;
  /** Add more public routes (e.g. playground assets) before the 404 handler. */
  extraRoutes?: (app: HonoApp) => void;
  /** Bytes of search matrices kept in memory across requests (default 64 MiB). */
  searchCacheBytes?: number;
  /** How long an enrolment's `Idempotency-Key` is remembered (default 24 h). */
  idempotencyTtlS?: number;
  /** Clock for rate limiting (tests). */
  now?: () => number;
  /** Version string shown in the OpenAPI document. */
  version?: string;
}

/** Hono's request context (`Context` from `hono`), as passed to a {@link PlaygroundHandler}. */
export type RequestContext = Context;

/** Handler for `GET /` given in {@link AppOptions.playground}. */
export type PlaygroundHandler = (c: RequestContext) => Response | Promise<Response>;

/** The Hono app (`OpenAPIHono` from `@hono/zod-openapi`) as handed to {@link AppOptions.extraRoutes}. */
export type HonoApp = OpenAPIHono;

/**
 * Hono context variables of the app: the request id, the caller's API-key fingerprint (logs) and
 * the full SHA-256 of the key (scopes idempotency records per caller).
 */
export type AppEnv = { Variables: { requestId: string; keyFp?: string; keyId?: string } };

/** The app as routes see it. */
export type App = OpenAPIHono<AppEnv>;

/** Services and limits built once by createApp and handed to every route module. */
export interface ServerDeps {
  faceModels: FaceModel[];
  /** The detector, loaded on first use; null when none is configured. */
  detector: (() => Promise<FaceDetector>) | null;
  classifiers: ClassifierModel[];
  store: GalleryStore;
  index: SearchIndex;
  maxBodyBytes: number;
  maxPixels: number;
  idempotencyTtlMs: number;
  now: () => number;
  log: (e: LogEntry) => void;
}

/** The face model called `name` (default: the first), or a typed error. */
export function pickFaceModel(d: ServerDeps, name?: string): FaceModel {
  if (!d.faceModels.length) throw new ApiError("not_found", "this server has no face model loaded");
  if (name === undefined) return d.faceModels[0];
  const m = d.faceModels.find((f) => f.name === name);
  if (!m) throw new ApiError("invalid_request", `unknown face model '${name}'; GET /v1/models lists them`);
  return m;
}
