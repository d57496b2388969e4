/**
 * The face-recognition HTTP API as a platform-neutral Hono app. Models, storage, keys and limits
 * come in through {@link AppOptions}; the same app object serves `Deno.serve(app.fetch)` and a
 * Cloudflare Worker's `fetch`.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { cors } from "hono/cors";
import { requestId } from "hono/request-id";
import { secureHeaders } from "hono/secure-headers";
import { setMetric, timing } from "hono/timing";
import { InvalidArgumentError } from "../errors.ts";
import { alignFace, type Point } from "./align.ts";
import { renderDocsPage } from "./docs.ts";
import { ApiError, toApiError } from "./errors.ts";
import { centerCropResize, decodeImage, DEFAULT_MAX_PIXELS, normalize, toPlanar } from "./image.ts";
import type { ClassifierModel, FaceModel, ServedModel } from "./served_model.ts";
import { type RateLimiter, TokenBucketLimiter } from "./ratelimit.ts";
import {
  ClassifyFields,
  CollectionCreate,
  CompareFields,
  EnrolFields,
  FORM_SCHEMAS,
  ImageFields,
  routes,
  SearchFields,
} from "./routes.ts";
import { cosine, SearchIndex } from "./search.ts";
import type { CollectionRecord, GalleryStore } from "./store/types.ts";
import { newFaceId, quantize } from "./store/types.ts";

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

/** Hono context variables of the app: the request id and the caller's API-key fingerprint. */
export type AppEnv = { Variables: { requestId: string; keyFp?: string } };

const enc = new TextEncoder();
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const sha256 = async (s: string) => new Uint8Array(await crypto.subtle.digest("SHA-256", enc.encode(s)));

/** Compare two equal-length digests without data-dependent early exit. */
function digestEqual(a: Uint8Array, b: Uint8Array): boolean {
  let d = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ (b[i] ?? 0);
  return d === 0;
}

function errorResponse(c: Context, e: ApiError): Response {
  for (const [k, v] of Object.entries(e.headers ?? {})) c.header(k, v);
  return c.json({ error: { code: e.code, message: e.message } }, e.status as 400);
}

function parseJsonField(name: string, s: string | undefined): unknown {
  if (s === undefined) return undefined;
  try {
    return JSON.parse(s);
  } catch {
    throw new ApiError("invalid_request", `field '${name}' is not valid JSON`);
  }
}

/** Landmarks: `[[x,y] ×5]` or a flat list of 10 numbers. */
export function parseLandmarks(s: string | undefined, name = "landmarks"): Point[] | undefined {
  const v = parseJsonField(name, s);
  if (v === undefined) return undefined;
  const bad = () =>
    new ApiError("invalid_request", `'${name}' must be 5 [x, y] points (or 10 numbers) in image pixels`);
  if (!Array.isArray(v)) throw bad();
  const flat = v.length === 10 && v.every((x) => typeof x === "number")
    ? v as number[]
    : v.length === 5 && v.every((p) => Array.isArray(p) && p.length === 2)
    ? (v as number[][]).flat()
    : null;
  if (!flat || !flat.every((x) => typeof x === "number" && Number.isFinite(x) && Math.abs(x) < 1e6)) {
    throw bad();
  }
  return [0, 1, 2, 3, 4].map((i) => [flat[2 * i], flat[2 * i + 1]] as Point);
}

function parseMetadata(s: string | undefined): Record<string, unknown> | null {
  const v = parseJsonField("metadata", s);
  if (v === undefined) return null;
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ApiError("invalid_request", "'metadata' must be a JSON object");
  }
  return v as Record<string, unknown>;
}

function zodMessage(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join(".") || "value"}: ${i.message}`).join("; ");
}

function softmax(logits: Float32Array): Float64Array {
  let m = -Infinity;
  for (const v of logits) m = Math.max(m, v);
  const p = Float64Array.from(logits, (v) => Math.exp(v - m));
  const s = p.reduce((a, b) => a + b, 0);
  return p.map((v) => v / s);
}

function modelInfo(m: ServedModel) {
  return { name: m.name, dtype: m.dtype, backend: m.backend, inputSize: [...m.inputSize] };
}

function collectionJson(c: CollectionRecord) {
  return {
    id: c.id,
    model: c.model,
    dim: c.dim,
    faceCount: c.faceCount,
    createdAt: c.createdAt,
    metadata: c.metadata,
  };
}

/**
 * Build the API. Routes: `GET /healthz`, `GET /openapi.json`, `GET /docs`, `GET /` (playground hook),
 * and under `/v1` (Bearer key): models, faces/embed, faces/compare, collections CRUD, enrol, list,
 * delete, search, classify. See docs/api.md for the contract.
 */
export function createApp(options: AppOptions): OpenAPIHono<AppEnv> {
  const faceModels = options.faceModels ?? [];
  const classifiers = options.classifiers ?? [];
  const names = [...faceModels, ...classifiers].map((m) => m.name);
  if (new Set(names).size !== names.length) {
    throw new InvalidArgumentError(`model names must be unique: ${names}`);
  }
  if (!options.apiKeys?.length && !options.allowAnonymous) {
    throw new InvalidArgumentError(
      "createApp: no API keys configured",
      "pass apiKeys (e.g. from env API_KEYS), or allowAnonymous: true for a local experiment",
    );
  }
  if (options.apiKeys?.some((k) => k.length < 8)) {
    throw new InvalidArgumentError("API keys must be at least 8 characters long");
  }
  const store = options.store;
  const maxBody = options.maxBodyBytes ?? 5 * 2 ** 20;
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const now = options.now ?? Date.now;
  const log = options.log ?? ((e: LogEntry) => console.log(JSON.stringify(e)));
  const keyDigests = Promise.all((options.apiKeys ?? []).map(sha256));
  const limiter: RateLimiter | null = options.rateLimit === false
    ? null
    : options.rateLimit && "take" in options.rateLimit
    ? options.rateLimit
    : new TokenBucketLimiter(options.rateLimit ?? { requestsPerMinute: 600, burst: 100 });
  const index = new SearchIndex(store, options.searchCacheBytes);

  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw new ApiError("invalid_request", zodMessage(result.error));
    },
  });

  // --- operations middleware -------------------------------------------------------------
  app.use(requestId());
  app.use(async (c, next) => {
    const t0 = performance.now();
    await next();
    const status = c.res.status;
    log({
      ts: new Date().toISOString(),
      level: status >= 500 ? "error" : status >= 400 ? "warn" : "info",
      msg: "request",
      reqId: c.get("requestId"),
      method: c.req.method,
      path: c.req.path,
      status,
      ms: Math.round((performance.now() - t0) * 100) / 100,
      key: c.get("keyFp"),
      code: c.res.headers.get("x-error-code") ?? undefined,
    });
  });
  app.use(secureHeaders());
  if (options.cors) {
    const o = options.cors.origins;
    app.use(cors({
      origin: o === "*" ? "*" : [...o],
      allowHeaders: ["Authorization", "Content-Type", "X-Request-Id"],
      allowMethods: ["GET", "POST", "PUT", "DELETE", "OPTIONS"],
      exposeHeaders: ["Server-Timing", "X-Request-Id", "Retry-After"],
      maxAge: options.cors.maxAgeS ?? 600,
    }));
  }
  app.use(timing({ crossOrigin: options.cors ? true : false }));

  app.onError((err, c) => {
    let e: ApiError;
    if (err instanceof HTTPException) {
      e = err.status === 413
        ? new ApiError("payload_too_large", `request body exceeds ${maxBody} bytes`)
        : new ApiError(err.status === 401 ? "unauthorized" : "invalid_request", err.message || "bad request");
    } else e = toApiError(err);
    if (e.code === "internal") {
      log({
        ts: new Date().toISOString(),
        level: "error",
        msg: "unhandled error",
        reqId: c.get("requestId"),
        path: c.req.path,
        error: err instanceof Error ? `${err.name}: ${err.message}\n${err.stack ?? ""}` : String(err),
      });
    }
    c.header("x-error-code", e.code);
    return errorResponse(c, e);
  });
  app.notFound((c) => {
    c.header("x-error-code", "not_found");
    return errorResponse(c, new ApiError("not_found", `no route for ${c.req.method} ${c.req.path}`));
  });

  // --- auth, rate limit, body limit on /v1 ------------------------------------------------
  app.use("/v1/*", async (c, next) => {
    if (c.req.method === "OPTIONS") return next();
    if (options.apiKeys?.length) {
      const h = c.req.header("authorization") ?? "";
      const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
      if (!m) {
        throw new ApiError("unauthorized", "missing API key: send 'Authorization: Bearer <key>'", {
          headers: { "WWW-Authenticate": 'Bearer realm="repmlp-edge"' },
        });
      }
      const d = await sha256(m[1]);
      let ok = false;
      for (const k of await keyDigests) ok = digestEqual(d, k) || ok; // no early exit
      if (!ok) {
        throw new ApiError("unauthorized", "API key not recognised", {
          headers: { "WWW-Authenticate": 'Bearer realm="repmlp-edge", error="invalid_token"' },
        });
      }
      c.set("keyFp", hex(d.subarray(0, 4)));
    }
    if (limiter) {
      const r = await limiter.take(c.get("keyFp") ?? "anonymous", now());
      if (!r.ok) {
        throw new ApiError("rate_limited", `rate limit exceeded; retry after ${r.retryAfterS} s`, {
          headers: { "Retry-After": String(r.retryAfterS) },
        });
      }
    }
    await next();
  });
  app.use("/v1/*", async (c, next) => {
    const req = c.req.raw;
    if (!req.body) return next();
    const tooLarge = () =>
      new ApiError("payload_too_large", `request body exceeds ${maxBody} bytes; send a smaller image`);
    const len = req.headers.get("content-length");
    if (len !== null && !req.headers.has("transfer-encoding")) {
      if (Number(len) > maxBody) throw tooLarge();
      return next();
    }
    // No length: count while buffering, stop at the cap. (Like hono/body-limit, but the rebuilt
    // Request does not copy the original's signal, which Deno.serve warns about.)
    const reader = req.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > maxBody) {
        await reader.cancel();
        throw tooLarge();
      }
      chunks.push(value);
    }
    const body = new Uint8Array(size);
    let o = 0;
    for (const ch of chunks) body.set(ch, o), o += ch.length;
    c.req.raw = new Request(req.url, { method: req.method, headers: req.headers, body });
    await next();
  });

  // --- helpers ------------------------------------------------------------------------------
  const faceModel = (name?: string): FaceModel => {
    if (!faceModels.length) throw new ApiError("not_found", "this server has no face model loaded");
    if (name === undefined) return faceModels[0];
    const m = faceModels.find((f) => f.name === name);
    if (!m) {
      throw new ApiError("invalid_request", `unknown face model '${name}'; GET /v1/models lists them`);
    }
    return m;
  };

  /** Images (by field name) and the other fields, from multipart or a raw image body + query. */
  async function readInput<S extends z.ZodObject>(
    c: Context,
    imageFields: string[],
    schema: S,
  ): Promise<{ images: Uint8Array[]; fields: z.infer<S> }> {
    const ct = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
    const raw: Record<string, string> = { ...c.req.query() };
    const images: Uint8Array[] = [];
    if (ct === "multipart/form-data") {
      let form: FormData;
      try {
        form = await c.req.formData();
      } catch {
        throw new ApiError("invalid_request", "malformed multipart/form-data body");
      }
      for (const f of imageFields) {
        const v = form.get(f);
        if (v === null) throw new ApiError("invalid_request", `missing image field '${f}'`);
        if (typeof v === "string") {
          throw new ApiError("invalid_request", `field '${f}' must be a file upload`);
        }
        images.push(new Uint8Array(await v.arrayBuffer()));
      }
      for (const [k, v] of form.entries()) {
        if (typeof v === "string" && !imageFields.includes(k)) raw[k] = v; // form fields win over query
      }
    } else if (ct === "image/jpeg" || ct === "image/png") {
      if (imageFields.length !== 1) {
        throw new ApiError(
          "unsupported_media_type",
          `this endpoint takes ${imageFields.length} images: send multipart/form-data with fields ${imageFields}`,
        );
      }
      images.push(new Uint8Array(await c.req.arrayBuffer()));
    } else {
      throw new ApiError(
        "unsupported_media_type",
        `content type '${ct || "(none)"}' not accepted: send multipart/form-data` +
          (imageFields.length === 1 ? " or a raw image/jpeg or image/png body" : ""),
      );
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) throw new ApiError("invalid_request", zodMessage(parsed.error));
    return { images, fields: parsed.data as z.infer<S> };
  }

  /** Decode + align/crop + normalise one image for a model; returns C·H·W floats. */
  function prepare(bytes: Uint8Array, m: ServedModel, landmarks?: Point[]): Float32Array {
    const [ch, h, w] = m.inputSize;
    const planar = toPlanar(decodeImage(bytes, maxPixels), ch as 1 | 3);
    const crop = landmarks
      ? alignFace(planar, landmarks, w, h, m.faceTemplate)
      : centerCropResize(planar, w, h);
    return normalize(crop, m.preprocess?.mean, m.preprocess?.std);
  }

  /** Prepare and embed images (one batch); records decode/infer in Server-Timing. */
  async function embedImages(
    c: Context,
    m: FaceModel,
    imgs: { bytes: Uint8Array; landmarks?: Point[] }[],
  ): Promise<Float32Array[]> {
    const t0 = performance.now();
    const [ch, h, w] = m.inputSize, sz = ch * h * w;
    const batch = new Float32Array(imgs.length * sz);
    imgs.forEach((im, i) => batch.set(prepare(im.bytes, m, im.landmarks), i * sz));
    const t1 = performance.now();
    setMetric(c, "decode", t1 - t0, "decode+align");
    const out = await m.embed(batch, imgs.length);
    setMetric(c, "infer", performance.now() - t1, `${m.name} ${m.backend}`);
    return imgs.map((_, i) => out.slice(i * m.dim, (i + 1) * m.dim));
  }

  async function collectionOr404(id: string): Promise<CollectionRecord> {
    const col = await store.getCollection(id);
    if (!col) throw new ApiError("not_found", `collection '${id}' does not exist; create it with PUT`);
    return col;
  }

  function modelOfCollection(col: CollectionRecord, requested?: string): FaceModel {
    if (requested !== undefined && requested !== col.model) {
      throw new ApiError(
        "invalid_request",
        `collection '${col.id}' uses model '${col.model}', not '${requested}'`,
      );
    }
    const m = faceModels.find((f) => f.name === col.model);
    if (!m) {
      throw new ApiError(
        "conflict",
        `collection '${col.id}' was built with model '${col.model}', which this server does not serve`,
      );
    }
    return m;
  }

  // --- public routes --------------------------------------------------------------------------
  app.openapi(
    routes.healthz,
    (c) => c.json({ status: "ok" as const, models: names.length, store: store.kind }, 200),
  );

  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    description: "API key from the server's API_KEYS",
  });
  for (const [name, s] of Object.entries(FORM_SCHEMAS)) app.openAPIRegistry.register(name, s);
  const docConfig = {
    openapi: "3.0.3",
    info: {
      title: "repmlp-edge face API",
      version: options.version ?? "0.1.0",
      description: "Face embedding, verification and identification with RepMLP models. " +
        'Errors are always {"error": {"code", "message"}}.',
    },
  };
  app.doc("/openapi.json", docConfig);
  let docsHtml: string | undefined;
  app.get("/docs", (c) => {
    docsHtml ??= renderDocsPage(app.getOpenAPIDocument(docConfig) as unknown as Record<string, unknown>);
    return c.html(docsHtml);
  });
  app.get(
    "/",
    (c) =>
      options.playground
        ? options.playground(c)
        : c.json({ name: "repmlp-edge face API", docs: "/docs", openapi: "/openapi.json" }),
  );
  options.extraRoutes?.(app as unknown as OpenAPIHono);

  // --- /v1 -------------------------------------------------------------------------------------
  app.openapi(routes.models, (c) =>
    c.json({
      models: [
        ...faceModels.map((m, i) => ({
          ...modelInfo(m),
          task: "face" as const,
          default: i === 0,
          dim: m.dim,
          threshold: m.threshold,
        })),
        ...classifiers.map((m, i) => ({
          ...modelInfo(m),
          task: "classifier" as const,
          default: i === 0,
          labels: m.labels,
        })),
      ],
    }, 200));

  app.openapi(routes.embed, async (c) => {
    const { images, fields } = await readInput(c, ["image"], ImageFields);
    const m = faceModel(fields.model);
    const [e] = await embedImages(c, m, [{ bytes: images[0], landmarks: parseLandmarks(fields.landmarks) }]);
    return c.json({ model: m.name, dim: m.dim, embedding: Array.from(e) }, 200);
  });

  app.openapi(routes.compare, async (c) => {
    const { images, fields } = await readInput(c, ["source", "target"], CompareFields);
    const m = faceModel(fields.model);
    const [a, b] = await embedImages(c, m, [
      { bytes: images[0], landmarks: parseLandmarks(fields.landmarks) },
      { bytes: images[1], landmarks: parseLandmarks(fields.targetLandmarks, "targetLandmarks") },
    ]);
    const threshold = fields.threshold ?? m.threshold;
    const similarity = cosine(a, b);
    return c.json({ model: m.name, similarity, match: similarity >= threshold, threshold }, 200);
  });

  app.openapi(routes.putCollection, async (c) => {
    const { id } = c.req.valid("param");
    let body: z.infer<typeof CollectionCreate> = {};
    const ct = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
    const text = await c.req.text();
    if (text.trim()) {
      if (ct !== "application/json") {
        throw new ApiError("unsupported_media_type", "send the collection body as application/json");
      }
      const parsed = CollectionCreate.safeParse(parseJsonField("body", text));
      if (!parsed.success) throw new ApiError("invalid_request", zodMessage(parsed.error));
      body = parsed.data;
      if (body.metadata && JSON.stringify(body.metadata).length > 4096) {
        throw new ApiError("invalid_request", "collection metadata must be at most 4096 bytes of JSON");
      }
    }
    const m = faceModel(body.model);
    const { created, collection } = await store.createCollection({
      id,
      model: m.name,
      dim: m.dim,
      metadata: body.metadata ?? null,
      createdAt: new Date().toISOString(),
    });
    if (!created && body.model !== undefined && collection.model !== body.model) {
      throw new ApiError("conflict", `collection '${id}' already exists with model '${collection.model}'`);
    }
    return c.json(collectionJson(collection), created ? 201 : 200);
  });

  app.openapi(routes.getCollection, async (c) => {
    const { id } = c.req.valid("param");
    return c.json(collectionJson(await collectionOr404(id)), 200);
  });

  app.openapi(routes.deleteCollection, async (c) => {
    const { id } = c.req.valid("param");
    const ok = await store.deleteCollection(id);
    index.invalidate(id);
    if (!ok) throw new ApiError("not_found", `collection '${id}' does not exist`);
    return c.json({ id, deleted: true as const }, 200);
  });

  app.openapi(routes.enrol, async (c) => {
    const { id } = c.req.valid("param");
    const { images, fields } = await readInput(c, ["image"], EnrolFields);
    const metadata = parseMetadata(fields.metadata);
    const landmarks = parseLandmarks(fields.landmarks);
    const col = await collectionOr404(id);
    const m = modelOfCollection(col, fields.model);
    const [e] = await embedImages(c, m, [{ bytes: images[0], landmarks }]);
    const t0 = performance.now();
    const faceId = newFaceId();
    const q = quantize(e);
    const ok = await store.addFace(id, {
      faceId,
      externalId: fields.externalId ?? null,
      metadata,
      createdAt: new Date().toISOString(),
      embedding: q,
    });
    setMetric(c, "store", performance.now() - t0);
    if (!ok) throw new ApiError("not_found", `collection '${id}' was deleted`);
    index.noteAdded(id, { faceId, externalId: fields.externalId ?? null, embedding: q });
    return c.json({ faceId, collectionId: id, externalId: fields.externalId ?? null }, 201);
  });

  app.openapi(routes.listFaces, async (c) => {
    const { id } = c.req.valid("param");
    const q = c.req.valid("query");
    let page;
    try {
      page = await store.listFaces(id, { limit: q.limit ?? 100, cursor: q.cursor ?? null });
    } catch (e) {
      if (q.cursor) {
        throw new ApiError("invalid_request", "invalid cursor: pass nextCursor from the previous page");
      }
      throw e;
    }
    if (!page) throw new ApiError("not_found", `collection '${id}' does not exist`);
    return c.json(page, 200);
  });

  app.openapi(routes.deleteFace, async (c) => {
    const { id, faceId } = c.req.valid("param");
    if (!(await store.deleteFace(id, faceId))) {
      await collectionOr404(id);
      throw new ApiError("not_found", `face '${faceId}' is not in collection '${id}'`);
    }
    index.noteDeleted(id, faceId);
    return c.json({ faceId, deleted: true as const }, 200);
  });

  app.openapi(routes.search, async (c) => {
    const { id } = c.req.valid("param");
    const { images, fields } = await readInput(c, ["image"], SearchFields);
    const landmarks = parseLandmarks(fields.landmarks);
    const col = await collectionOr404(id);
    const m = modelOfCollection(col, fields.model);
    const [e] = await embedImages(c, m, [{ bytes: images[0], landmarks }]);
    const threshold = fields.threshold ?? m.threshold;
    const t0 = performance.now();
    const r = await index.search(col, e, fields.k ?? 5, threshold);
    setMetric(c, "search", performance.now() - t0);
    if (!r) throw new ApiError("not_found", `collection '${id}' was deleted`);
    return c.json({ model: m.name, threshold, searchedFaces: r.searched, matches: r.matches }, 200);
  });

  app.openapi(routes.classify, async (c) => {
    const { images, fields } = await readInput(c, ["image"], ClassifyFields);
    if (!classifiers.length) throw new ApiError("not_found", "this server has no classifier loaded");
    const m = fields.model === undefined ? classifiers[0] : classifiers.find((x) => x.name === fields.model);
    if (!m) {
      throw new ApiError(
        "invalid_request",
        `unknown classifier '${fields.model}'; GET /v1/models lists them`,
      );
    }
    const t0 = performance.now();
    const x = prepare(images[0], m);
    const t1 = performance.now();
    setMetric(c, "decode", t1 - t0);
    const logits = await m.classify(x, 1);
    setMetric(c, "infer", performance.now() - t1, `${m.name} ${m.backend}`);
    const p = softmax(logits);
    const order = [...p.keys()].sort((a, b) => p[b] - p[a]).slice(
      0,
      Math.min(fields.k ?? 5, m.labels.length),
    );
    return c.json({
      model: m.name,
      predictions: order.map((i) => ({ label: m.labels[i], index: i, probability: p[i] })),
    }, 200);
  });

  return app;
}
