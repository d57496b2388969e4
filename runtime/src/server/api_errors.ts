/**
 * HTTP error contract: every failure answers `{ "error": { "code", "message" } }` with one of the
 * stable codes below. Clients branch on `code`; `message` is for humans and may change.
 */
import { ImageError } from "../errors.ts";

/** Stable error codes of the HTTP API and their HTTP status. */
export const API_ERRORS = {
  unauthorized: 401, // missing or wrong API key
  invalid_request: 400, // bad field, query parameter, JSON or multipart framing
  invalid_image: 400, // bytes are not a decodable JPEG/PNG
  not_found: 404, // unknown collection, face or route
  method_not_allowed: 405, // method the API does not serve (TRACE, PATCH …); see Allow
  conflict: 409, // collection exists with another model
  payload_too_large: 413, // request body above the byte limit
  image_too_large: 413, // image header declares more pixels than allowed
  unsupported_media_type: 415, // content type / image format not accepted
  idempotency_key_reused: 422, // Idempotency-Key already used for a different request
  no_face: 422, // no face found (or no face at the requested index) in an image sent without landmarks
  rate_limited: 429, // per-key limit hit; see Retry-After
  internal: 500, // bug or backend failure; details only in the server log
} as const;

/** One of the stable codes. */
export type ApiErrorCode = keyof typeof API_ERRORS;

/** An error that becomes an HTTP error response. */
export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly status: number;
  readonly headers?: Record<string, string>;
  constructor(
    code: ApiErrorCode,
    message: string,
    options?: { headers?: Record<string, string>; cause?: unknown },
  ) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = "ApiError";
    this.code = code;
    this.status = API_ERRORS[code];
    this.headers = options?.headers;
  }
}

/** Map any thrown value to an ApiError; anything not thrown on purpose is `internal`. */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof ImageError) return new ApiError(e.kind, e.message, { cause: e });
  return new ApiError("internal", "internal error; the server log has details under this request id", {
    cause: e,
  });
}
