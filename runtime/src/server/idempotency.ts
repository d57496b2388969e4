/**
 * `Idempotency-Key` for enrolment: a client that lost the response retries with the same key and
 * gets the first response again instead of a second face. Records live in the gallery store, written
 * in the same atomic step as the face (so a crash leaves both or neither), scoped per API key, kept
 * for a TTL. Same key + same request → replay; same key + another request → `idempotency_key_reused`.
 */
import type { Context } from "hono";
import type { AppEnv } from "./context.ts";
import { ApiError } from "./api_errors.ts";
import type { IdempotencyRecord } from "./store/types.ts";

/** Header name (IETF draft-ietf-httpapi-idempotency-key-header). */
export const IDEMPOTENCY_HEADER = "Idempotency-Key";
/** Header set on a replayed response. */
export const REPLAYED_HEADER = "Idempotent-Replayed";

const KEY = /^[\x21-\x7e]{1,255}$/;
const enc = new TextEncoder();

async function sha256Hex(parts: (string | Uint8Array)[]): Promise<string> {
  // Length-prefix every part so that no two different part lists hash the same bytes.
  const chunks = parts.map((p) => typeof p === "string" ? enc.encode(p) : p);
  const buf = new Uint8Array(chunks.reduce((a, p) => a + 8 + p.length, 0));
  const dv = new DataView(buf.buffer);
  let o = 0;
  for (const p of chunks) dv.setFloat64(o, p.length), buf.set(p, o + 8), o += 8 + p.length;
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", buf));
  return Array.from(d, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** The request's idempotency key scoped to the caller (store key), or null without the header. */
export async function idempotencyScope(c: Context<AppEnv>): Promise<string | null> {
  const k = c.req.header(IDEMPOTENCY_HEADER);
  if (k === undefined) return null;
  if (!KEY.test(k)) {
    throw new ApiError("invalid_request", `${IDEMPOTENCY_HEADER} must be 1–255 visible ASCII characters`);
  }
  return await sha256Hex(["idem", c.get("keyId") ?? "anonymous", k]);
}

/**
 * Digest of what a request asks for, independent of its framing (multipart boundaries differ
 * between retries): the path, the parsed fields in key order, and the image bytes.
 */
export function requestFingerprint(
  path: string,
  fields: Record<string, unknown>,
  images: Uint8Array[],
): Promise<string> {
  const f = Object.keys(fields).sort().filter((k) => fields[k] !== undefined).map((k) => [k, fields[k]]);
  return sha256Hex([path, JSON.stringify(f), ...images]);
}

/**
 * The stored response body again (same request; sets `Idempotent-Replayed`), or throws
 * `idempotency_key_reused` (another request). The caller answers it with `rec.status`.
 */
export function replayed<T>(c: Context, rec: IdempotencyRecord, fingerprint: string): T {
  if (rec.fingerprint !== fingerprint) {
    throw new ApiError(
      "idempotency_key_reused",
      `${IDEMPOTENCY_HEADER} was already used for a different request; use a new key for a new enrolment`,
    );
  }
  c.header(REPLAYED_HEADER, "true");
  return JSON.parse(rec.body) as T;
}
