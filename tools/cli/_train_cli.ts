/** The flags `deno task train` and `deno task distill` share: schedule, seed, backend, checkpoints. */
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import type { BackendName } from "../train/tfjs_backend.ts";

/** parseCli spec of the shared flags. */
export const RUN_FLAGS = {
  epochs: { type: "string" },
  "max-seconds": { type: "string" },
  "max-steps": { type: "string" },
  batch: { type: "string" },
  lr: { type: "string" },
  seed: { type: "string", default: "0" },
  backend: { type: "string", default: "auto" },
  resume: { type: "boolean", default: false },
  "checkpoint-seconds": { type: "string", default: "300" },
  quiet: { type: "boolean", default: false },
} as const;

/** `--<what>` as a positive number (integer with `int`); undefined when absent. */
export function positive(v: string | undefined, what: string, int = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (int && !Number.isInteger(n))) {
    throw new InvalidArgumentError(`--${what} must be a positive ${int ? "integer" : "number"}, got '${v}'`);
  }
  return n;
}

/** The shared flags' values, as fit() and runDistill() take them. */
export function runOptions(v: {
  epochs?: string;
  "max-seconds"?: string;
  "max-steps"?: string;
  batch?: string;
  lr?: string;
  seed?: string;
  backend?: string;
  resume?: boolean;
  "checkpoint-seconds"?: string;
}) {
  return {
    epochs: positive(v.epochs, "epochs", true),
    maxSeconds: positive(v["max-seconds"], "max-seconds"),
    maxSteps: positive(v["max-steps"], "max-steps", true),
    batch: positive(v.batch, "batch", true),
    lr: positive(v.lr, "lr"),
    seed: Number(v.seed),
    backend: v.backend as BackendName,
    resume: Boolean(v.resume),
    checkpointSeconds: positive(v["checkpoint-seconds"], "checkpoint-seconds")!,
  };
}
