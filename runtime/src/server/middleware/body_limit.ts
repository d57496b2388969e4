/** Request body cap on `hono/body-limit` (declared length checked up front, streamed bodies counted). */
import type { MiddlewareHandler } from "hono";
import { bodyLimit as honoBodyLimit } from "hono/body-limit";
import { ApiError } from "../errors.ts";

/** Refuse bodies above `maxBytes` with `payload_too_large`, and a malformed Content-Length. */
export function bodyLimit(maxBytes: number): MiddlewareHandler {
  const limit = honoBodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new ApiError("payload_too_large", `request body exceeds ${maxBytes} bytes; send a smaller image`);
    },
  });
  return (c, next) => {
    const len = c.req.header("content-length");
    if (len !== undefined && !/^\d+$/.test(len.trim())) {
      throw new ApiError("invalid_request", `malformed Content-Length '${len.slice(0, 40)}'`);
    }
    return limit(c, next);
  };
}
