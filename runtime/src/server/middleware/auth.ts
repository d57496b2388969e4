/**
 * API-key auth on `hono/bearer-auth`. Only SHA-256 digests of the keys are kept; a presented key is
 * hashed and compared with every digest in constant time (no early exit, no length leak), so
 * response time does not depend on how much of a key matched.
 */
import type { MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import type { AppEnv } from "../context.ts";
import { ApiError } from "../api_errors.ts";
import { InvalidArgumentError } from "../../errors.ts";

const REALM = "repmlp-edge";
/** RFC 6750 token68 characters: what `hono/bearer-auth` accepts as a token. */
const TOKEN = /^[A-Za-z0-9._~+/-]+=*$/;

const enc = new TextEncoder();
const sha256 = async (s: string) => new Uint8Array(await crypto.subtle.digest("SHA-256", enc.encode(s)));
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** Compare two equal-length digests without data-dependent early exit. */
export function digestEqual(a: Uint8Array, b: Uint8Array): boolean {
  let d = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ (b[i] ?? 0);
  return d === 0;
}

/** Throw if a configured key could never be presented (too short, or not a bearer token). */
export function validateApiKeys(keys: string[]): void {
  if (keys.some((k) => k.length < 8)) {
    throw new InvalidArgumentError("API keys must be at least 8 characters long");
  }
  if (keys.some((k) => !TOKEN.test(k))) {
    throw new InvalidArgumentError("API keys may use only A-Z a-z 0-9 . _ ~ + / - (then '=' padding)");
  }
}

const refuse = (message: string, challenge: string) => () => {
  throw new ApiError("unauthorized", message, { headers: { "WWW-Authenticate": challenge } });
};

/** `Authorization: Bearer <key>` against `keys`; sets `keyFp` (8 hex, for logs) and `keyId` (full digest). */
export function apiKeyAuth(keys: string[]): MiddlewareHandler<AppEnv> {
  const digests = Promise.all(keys.map(sha256));
  const auth = bearerAuth<AppEnv>({
    realm: REALM,
    verifyToken: async (token, c) => {
      const d = await sha256(token);
      let ok = false;
      for (const k of await digests) ok = digestEqual(d, k) || ok; // every digest, no early exit
      if (ok) c.set("keyFp", hex(d.subarray(0, 4))), c.set("keyId", hex(d));
      return ok;
    },
    noAuthenticationHeader: {
      message: refuse("missing API key: send 'Authorization: Bearer <key>'", `Bearer realm="${REALM}"`),
    },
    invalidAuthenticationHeader: {
      message: refuse(
        "malformed Authorization header: send 'Authorization: Bearer <key>'",
        `Bearer realm="${REALM}"`,
      ),
    },
    invalidToken: {
      message: refuse("API key not recognised", `Bearer realm="${REALM}", error="invalid_token"`),
    },
  });
  return (c, next) => c.req.method === "OPTIONS" ? next() : auth(c, next);
}
