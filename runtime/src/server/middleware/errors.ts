/**
 * The one error path: every failure (thrown ApiError, Hono HTTPException, unknown route or method,
 * bug) answers `{ "error": { "code", "message" } }` with an `x-error-code` header for the access log.
 */
import type { Context, MiddlewareHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { AppEnv, LogEntry } from "../context.ts";
import { ApiError, toApiError } from "../api_errors.ts";

/** Methods the API serves; anything else is `method_not_allowed` before any other middleware runs. */
export const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"] as const;

/** The JSON error response for `e` (its headers included). */
export function errorResponse(c: Context, e: ApiError): Response {
  for (const [k, v] of Object.entries(e.headers ?? {})) c.header(k, v);
  c.header("x-error-code", e.code);
  return c.json({ error: { code: e.code, message: e.message } }, e.status as 400);
}

/** `app.onError`: map anything thrown to its typed error; log unexpected ones with the stack. */
export function onError(log: (e: LogEntry) => void, maxBodyBytes: number) {
  return (err: Error, c: Context<AppEnv>): Response => {
    let e: ApiError;
    if (err instanceof HTTPException) {
      e = err.status === 413
        ? new ApiError("payload_too_large", `request body exceeds ${maxBodyBytes} bytes`)
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
    return errorResponse(c, e);
  };
}

/** `app.notFound`: no route for this path (and method). */
export const notFound: NotFoundHandler = (c) =>
  errorResponse(c, new ApiError("not_found", `no route for ${c.req.method} ${c.req.path}`));

/** Refuse methods outside {@link METHODS} (TRACE, PATCH, CONNECT …) with 405 and `Allow`. */
export function allowedMethods(): MiddlewareHandler {
  const allowed = new Set<string>(METHODS);
  return async (c, next) => {
    if (!allowed.has(c.req.method)) {
      throw new ApiError("method_not_allowed", `method ${c.req.method} is not served by this API`, {
        headers: { Allow: METHODS.join(", ") },
      });
    }
    await next();
  };
}
