/**
 * Typed errors. Every failure the kit reports on bad input is one of these, with a stable `code`
 * so CLIs, the HTTP API and tests can branch on it without parsing messages.
 */

/** Stable machine-readable error codes. */
export type ErrorCode =
  | "corrupt_file" // zip/pickle/safetensors/bundle structure is broken or truncated
  | "unsafe_pickle" // pickle asks for a GLOBAL or opcode outside the allow-list
  | "integrity" // bundle hash mismatch
  | "unsupported" // valid file, but a feature we do not handle (dtype, pickle protocol …)
  | "arch_mismatch" // checkpoint keys/shapes do not fit the architecture
  | "invalid_argument" // bad CLI/API argument (shape, kwargs, backend …)
  | "invalid_input" // bad tensor input (shape, dtype, NaN)
  | "runtime"; // backend failed at run time

/** Base class of every error the kit throws on purpose. */
export class RepmlpError extends Error {
  /** Stable code. */
  readonly code: ErrorCode;
  /** Optional hint telling the user what to do. */
  readonly hint?: string;
  /** Create the error; `hint` says what to do. */
  constructor(code: ErrorCode, message: string, options?: { hint?: string; cause?: unknown }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = "RepmlpError";
    this.code = code;
    this.hint = options?.hint;
  }
}

/** Structure of a file is broken (truncated zip, bad pickle stream, bad header …). */
export class CorruptFileError extends RepmlpError {
  /** Create the error; `hint` says what to do. */
  constructor(message: string, options?: { hint?: string; cause?: unknown }) {
    super("corrupt_file", message, options);
    this.name = "CorruptFileError";
  }
}

/** A pickle tried to reference something outside the allow-list. Nothing was executed. */
export class UnsafePickleError extends RepmlpError {
  /** Create the error; `hint` says what to do. */
  constructor(message: string) {
    super("unsafe_pickle", message, {
      hint:
        "only plain state_dict checkpoints are accepted; re-save with torch.save(model.state_dict(), path)",
    });
    this.name = "UnsafePickleError";
  }
}

/** Bundle content does not match its recorded hash. */
export class IntegrityError extends RepmlpError {
  /** Create the error; `hint` says what to do. */
  constructor(message: string) {
    super("integrity", message, { hint: "the file was modified or truncated; re-run `deno task convert`" });
    this.name = "IntegrityError";
  }
}

/** Checkpoint does not fit the chosen architecture. */
export class ArchMismatchError extends RepmlpError {
  /** Create the error; `hint` says what to do. */
  constructor(message: string, hint?: string) {
    super("arch_mismatch", message, { hint });
    this.name = "ArchMismatchError";
  }
}

/** A caller passed a bad argument or input. */
export class InvalidArgumentError extends RepmlpError {
  /** Create the error; `hint` says what to do. */
  constructor(message: string, hint?: string) {
    super("invalid_argument", message, { hint });
    this.name = "InvalidArgumentError";
  }
}

/** Input tensor has the wrong shape, dtype or values. */
export class InvalidInputError extends RepmlpError {
  /** Create the error; `hint` says what to do. */
  constructor(message: string, hint?: string) {
    super("invalid_input", message, { hint });
    this.name = "InvalidInputError";
  }
}

/**
 * An input size the model does not take: a feature map that does not divide into a RepMLPNet
 * layer's h×w partitions, differs from a 2021 RepMLP's fixed H×W, or vanishes in a strided conv.
 */
export class InputSizeError extends InvalidInputError {
  /** State_dict prefix of the layer that rejects the size ("" for a bare block). */
  readonly layer: string;
  /** RepMLPNet stage index of that layer, null outside `stages.*`. */
  readonly stage: number | null;
  /** Feature map [H, W] reaching the layer. */
  readonly map: [number, number];
  /** The layer's partition [h, w] ("partition"), its fixed [H, W] ("fixed"), or its kernel ("empty"). */
  readonly want: [number, number];
  /** Nearest input sizes [H, W] that fit (empty for fixed-size models). */
  readonly suggestions: [number, number][];
  /** Create the error (see {@link InputSizeError} fields). */
  constructor(
    message: string,
    d: { layer: string; stage: number | null; map: [number, number]; want: [number, number] },
    suggestions: [number, number][],
    hint?: string,
  ) {
    super(message, hint);
    this.name = "InputSizeError";
    this.layer = d.layer;
    this.stage = d.stage;
    this.map = d.map;
    this.want = d.want;
    this.suggestions = suggestions;
  }
}

/** Valid but unsupported feature. */
export class UnsupportedError extends RepmlpError {
  /** Create the error; `hint` says what to do. */
  constructor(message: string, hint?: string) {
    super("unsupported", message, { hint });
    this.name = "UnsupportedError";
  }
}

/** Stable codes of image-pipeline failures; the HTTP API uses the same words. */
export type ImageErrorCode =
  | "invalid_image"
  | "image_too_large"
  | "unsupported_media_type"
  | "invalid_request";

/**
 * An image could not be decoded (`invalid_image`), is larger than the caller allows (`image_too_large`),
 * is in a format the kit does not read (`unsupported_media_type`), or the crop asked for is impossible
 * (`invalid_request`, e.g. degenerate landmarks). Messages are neutral: they never
 * carry a decoder's internal text, so they are safe to show to an API client.
 */
export class ImageError extends RepmlpError {
  /** What went wrong, as the API's error code. */
  readonly kind: ImageErrorCode;
  /** Create the error. */
  constructor(kind: ImageErrorCode, message: string) {
    super(kind === "unsupported_media_type" ? "unsupported" : "invalid_input", message);
    this.name = "ImageError";
    this.kind = kind;
  }
}
