/**
 * Checking a state_dict against a model description, and typed access to its float tensors.
 */
import { ArchMismatchError } from "./errors.ts";
import { type Mode, type ModelDesc, paramSpecs } from "./arch/ir.ts";
import { type StateDict, toF32 } from "./tensor.ts";
import { bnAffine } from "./kernels.ts";
import { key } from "./arch/ir.ts";

/** Problems found when matching a state_dict to a description. */
export interface MatchReport {
  /** Expected keys the state_dict lacks. */
  missing: string[];
  /** Keys the description does not expect. */
  unexpected: string[];
  /** Keys present with the wrong shape. */
  shape: { key: string; expected: number[]; got: number[] }[];
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Compare keys and shapes (a scalar `num_batches_tracked` may be 0-d or [1]); no throw. */
export function matchStateDict(desc: ModelDesc, sd: StateDict, mode: Mode): MatchReport {
  const specs = paramSpecs(desc.root, mode);
  const want = new Set(specs.map((s) => s.key));
  const rep: MatchReport = { missing: [], unexpected: [], shape: [] };
  for (const s of specs) {
    const t = sd.get(s.key);
    if (!t) rep.missing.push(s.key);
    else if (s.key.endsWith("num_batches_tracked") ? t.data.length !== 1 : !sameShape(t.shape, s.shape)) {
      rep.shape.push({ key: s.key, expected: s.shape, got: t.shape });
    }
  }
  for (const k of sd.keys()) if (!want.has(k)) rep.unexpected.push(k);
  return rep;
}

function isClean(r: MatchReport, ignoreNbt: boolean): boolean {
  const miss = ignoreNbt ? r.missing.filter((k) => !k.endsWith("num_batches_tracked")) : r.missing;
  return miss.length === 0 && r.unexpected.length === 0 && r.shape.length === 0;
}

function describeReport(r: MatchReport): string {
  const parts: string[] = [];
  const list = (a: string[]) => a.slice(0, 6).join(", ") + (a.length > 6 ? ` … (+${a.length - 6})` : "");
  if (r.missing.length) parts.push(`missing keys: ${list(r.missing)}`);
  if (r.unexpected.length) parts.push(`unexpected keys: ${list(r.unexpected)}`);
  if (r.shape.length) {
    parts.push(
      "shape mismatch: " +
        r.shape.slice(0, 4).map((s) => `${s.key} expected [${s.expected}] got [${s.got}]`).join("; "),
    );
  }
  return parts.join("\n  ");
}

/**
 * Decide whether a state_dict is a training-time or a deploy-mode checkpoint of `desc`, or throw
 * an ArchMismatchError listing what does not fit. `num_batches_tracked` may be absent (safetensors
 * exports often drop it).
 */
export function detectMode(desc: ModelDesc, sd: StateDict): Mode {
  const train = matchStateDict(desc, sd, "train");
  if (isClean(train, true)) return "train";
  const deploy = matchStateDict(desc, sd, "deploy");
  if (isClean(deploy, true)) return "deploy";
  const best = train.missing.length + train.unexpected.length + train.shape.length <=
      deploy.missing.length + deploy.unexpected.length + deploy.shape.length
    ? ["training", train] as const
    : ["deploy", deploy] as const;
  throw new ArchMismatchError(
    `checkpoint does not fit ${desc.arch}(${JSON.stringify(desc.kwargs)}) (closest: ${best[0]} layout)\n  ${
      describeReport(best[1])
    }`,
    "check --arch and --kwargs: they must be the Python constructor's arguments for this checkpoint",
  );
}

/** Float32 view of state_dict tensors, converted once. */
export class Params {
  #sd: StateDict;
  #cache = new Map<string, Float32Array>();
  constructor(sd: StateDict) {
    this.#sd = sd;
  }
  /** Float32 data of `key`; throws ArchMismatchError when absent. */
  get(key: string): Float32Array {
    let v = this.#cache.get(key);
    if (!v) {
      const t = this.#sd.get(key);
      if (!t) throw new ArchMismatchError(`missing tensor '${key}'`);
      v = toF32(t).data;
      this.#cache.set(key, v);
    }
    return v;
  }
  /** Eval-mode BatchNorm `<name>.{weight,bias,running_mean,running_var}` as per-channel scale t and shift b. */
  bn(name: string, eps: number): { t: Float32Array; b: Float32Array } {
    return bnAffine(
      this.get(key(name, "weight")),
      this.get(key(name, "bias")),
      this.get(key(name, "running_mean")),
      this.get(key(name, "running_var")),
      eps,
    );
  }
  /** Float32 data of `key`, or null when absent. */
  opt(key: string): Float32Array | null {
    return this.#sd.has(key) ? this.get(key) : null;
  }
}
