/**
 * The checkpoint + resume-file pair that `deno task train` and `deno task distill` write beside
 * `--out`: `<out>` (training-time weights) and `<out>.resume.safetensors` (optimiser state with the
 * run's progress as JSON metadata). Each file is written to a temp file, then renamed, so an
 * interrupted save leaves the previous pair intact.
 */
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import { readSafetensors, writeSafetensors } from "../../runtime/src/io/safetensors.ts";
import type { StateDict } from "../../runtime/src/tensor.ts";

const STATE_KEY = "repmlp_edge_resume";

/** Path of the resume file beside checkpoint `out`. */
export function resumePath(out: string): string {
  return `${out}.resume.safetensors`;
}

/** A run to continue: its weights, optimiser tensors and progress. */
export interface Resumed<S> {
  weights: StateDict;
  optimiser: StateDict;
  state: S;
}

/** Read `<out>` and its resume file; either missing → InvalidArgumentError. */
export async function readResume<S>(out: string): Promise<Resumed<S>> {
  try {
    const r = readSafetensors(await Deno.readFile(resumePath(out)));
    const weights = readSafetensors(await Deno.readFile(out)).tensors;
    return { weights, optimiser: r.tensors, state: JSON.parse(r.metadata[STATE_KEY]) };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new InvalidArgumentError(
        `--resume: ${out} or ${resumePath(out)} not found`,
        "start without --resume",
      );
    }
    throw e;
  }
}

async function replace(path: string, bytes: Uint8Array): Promise<void> {
  await Deno.writeFile(`${path}.tmp`, bytes);
  await Deno.rename(`${path}.tmp`, path);
}

/** Write the checkpoint (with its metadata) and the resume file. */
export async function writeResume(
  out: string,
  weights: StateDict,
  meta: Record<string, string>,
  optimiser: StateDict,
  state: unknown,
): Promise<void> {
  await replace(out, writeSafetensors(weights, meta));
  await replace(resumePath(out), writeSafetensors(optimiser, { [STATE_KEY]: JSON.stringify(state) }));
}
