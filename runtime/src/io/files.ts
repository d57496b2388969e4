/** Filesystem entry points (Deno only; everything else in src/io works on bytes and runs in Workers). */
import { InvalidArgumentError } from "../errors.ts";
import type { StateDict } from "../tensor.ts";
import { readStateDict } from "./statedict.ts";

/** Read a file, turning a missing file or permission problem into InvalidArgumentError. */
export async function readFileBytes(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new InvalidArgumentError(`file not found: ${path}`);
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new InvalidArgumentError(`cannot read ${path}: permission denied`, "run with --allow-read");
    }
    if (e instanceof Deno.errors.IsADirectory) throw new InvalidArgumentError(`${path} is a directory`);
    throw e;
  }
}

/** Read a state_dict from a `.pth` (zip), `.safetensors` or `.npz` file, dispatching on magic bytes. */
export async function readStateDictFile(path: string): Promise<StateDict> {
  return readStateDict(await readFileBytes(path));
}
