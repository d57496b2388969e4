/** Request body cap on `hono/body-limit` (declared length checked up front, streamed bodies counted). */
import type { MiddlewareHandler } from "hono";
import { bodyLimit as honoBodyLimit } from "hono/body-limit";
import { ApiError } from "../api_errors.ts";

/** Refuse bodies above `maxBytes` with `payload_too_large`, and a malformed Content-Length. */
export function bodyLimit(maxBytes: number): MiddlewareHandler {
  const limit = honoBodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new ApiError("payload_too_large", `request body exceeds ${maxBytes} bytes; send a smaller image`);
    },
  });
  return (c, next) => {
    const req = c.req.raw;
    const len = req.headers.get("content-length");
    if (len !== null && !/^\s*\d+\s*$/.test(len)) {
      throw new ApiError("invalid_request", `malformed Content-Length '${len.slice(0, 40)}'`);
    }
    if (req.body && (len === null || req.headers.has("transfer-encoding"))) {
      // hono/body-limit rebuilds a streamed request with `new Request(raw, …)`, which copies the
      // signal of Deno.serve's request and makes Deno warn about legacy abort behaviour. Hand it a
      // request on the same (unread) stream without that signal.
      c.req.raw = new Request(req.url, {
        method: req.method,
        headers: req.headers,
        body: req.body,
        duplex: "half",
      } as RequestInit);
    }
    return limit(c, next);
  };
}
