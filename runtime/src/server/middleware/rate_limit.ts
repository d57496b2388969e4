/** Per-key rate limit in front of /v1 (after auth, so the bucket is the caller's key). */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../context.ts";
import { ApiError } from "../api_errors.ts";
import type { RateLimiter } from "../token_bucket.ts";

/** Spend one token of the caller's bucket or answer `rate_limited` with `Retry-After`. */
export function rateLimit(limiter: RateLimiter, now: () => number): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (c.req.method === "OPTIONS") return next();
    const r = await limiter.take(c.get("keyFp") ?? "anonymous", now());
    if (!r.ok) {
      throw new ApiError("rate_limited", `rate limit exceeded; retry after ${r.retryAfterS} s`, {
        headers: { "Retry-After": String(r.retryAfterS) },
      });
    }
    await next();
  };
}
