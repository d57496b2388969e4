/** Access log: one structured line per request, level by status, with the key's fingerprint. */
import type { MiddlewareHandler } from "hono";
import type { AppEnv, LogEntry } from "../context.ts";

/** Log every request after it is answered (status, time, error code; never keys or bodies). */
export function accessLog(log: (e: LogEntry) => void): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
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
  };
}
