/** Per-key rate limiting (token bucket). State is per isolate/process; see docs/api.md. */

/** Outcome of one request's check. */
export type RateDecision = { ok: true; remaining: number } | { ok: false; retryAfterS: number };

/** Anything that can admit or refuse a request for a key (swap in a shared store for multi-instance limits). */
export interface RateLimiter {
  /** Spend one request of `key` at time `nowMs` (ms since epoch): admitted with what remains, or refused. */
  take(key: string, nowMs: number): RateDecision | Promise<RateDecision>;
}

/** Token bucket: `burst` requests at once, refilled at `requestsPerMinute`. */
export class TokenBucketLimiter implements RateLimiter {
  readonly rate: number;
  readonly burst: number;
  #b = new Map<string, { tokens: number; t: number }>();

  constructor(opts: { requestsPerMinute: number; burst?: number }) {
    if (!(opts.requestsPerMinute > 0)) throw new RangeError("requestsPerMinute must be > 0");
    this.rate = opts.requestsPerMinute / 60_000; // tokens per ms
    this.burst = Math.max(1, opts.burst ?? Math.ceil(opts.requestsPerMinute / 6));
  }

  take(key: string, nowMs: number): RateDecision {
    const b = this.#b.get(key) ?? { tokens: this.burst, t: nowMs };
    b.tokens = Math.min(this.burst, b.tokens + Math.max(0, nowMs - b.t) * this.rate);
    b.t = nowMs;
    this.#b.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true, remaining: Math.floor(b.tokens) };
    }
    return { ok: false, retryAfterS: Math.max(1, Math.ceil((1 - b.tokens) / this.rate / 1000)) };
  }
}
