/** Filesystem entry points (Deno only; everything else in src/io works on bytes and runs in Workers). */
import { CorruptFileError, InvalidArgumentError } from "../errors.ts";
import type { StateDict, Tensor } from "../tensor.ts";
import { decodeTfjsWeights, parseTfjsManifest } from "./tfjs.ts";
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

/**
 * Read a TensorFlow.js weights manifest and its shards (paths relative to the manifest; absolute
 * paths and `..` are refused so a manifest cannot read outside its folder) and decode every weight.
 */
export async function readTfjsWeightsFile(path: string): Promise<Map<string, Tensor>> {
  const groups = parseTfjsManifest(await readFileBytes(path));
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/") + 1) : "./";
  return decodeTfjsWeights(groups, (p) => {
    if (p.startsWith("/") || p.split(/[\\/]/).includes("..")) {
      throw new CorruptFileError(`tfjs weights manifest: shard path '${p}' leaves the manifest's folder`);
    }
    return readFileBytes(dir + p);
  });
}
