/**
 * CORS and Server-Timing for browser clients on other origins. `Timing-Allow-Origin` names the
 * request's origin only when CORS admits it, so refused origins do not get timing data either.
 */
import type { Context, MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import { timing } from "hono/timing";
import type { AppOptions } from "../context.ts";

/** Origin admitted by the CORS config, or null. */
function admitted(cfg: AppOptions["cors"], origin: string | undefined): string | null {
  if (!cfg || !origin) return null;
  return cfg.origins === "*" || cfg.origins.includes(origin) ? origin : null;
}

/** `[cors, timing]` middleware (CORS only when configured; timing always, same-origin readable). */
export function crossOrigin(cfg: AppOptions["cors"]): MiddlewareHandler[] {
  const t = timing({ crossOrigin: (c: Context) => admitted(cfg, c.req.header("origin")) ?? false });
  if (!cfg) return [t];
  return [
    cors({
      origin: cfg.origins === "*" ? "*" : [...cfg.origins],
      allowHeaders: ["Authorization", "Content-Type", "X-Request-Id", "Idempotency-Key"],
      allowMethods: ["GET", "POST", "PUT", "DELETE", "OPTIONS"],
      exposeHeaders: ["Server-Timing", "X-Request-Id", "Retry-After", "Idempotent-Replayed"],
      maxAge: cfg.maxAgeS ?? 600,
    }),
    t,
  ];
}
