/** Format detection and a single entry point for reading a state_dict from bytes (no filesystem). */
import { CorruptFileError, UnsupportedError } from "../errors.ts";
import type { StateDict } from "../tensor.ts";
import { isNpy, readNpz } from "./npy.ts";
import { readPth } from "./pth.ts";
import { isSafetensors, readSafetensors } from "./safetensors.ts";
import { isZip, openZip } from "./zip.ts";

/** File formats a state_dict can be read from. */
export type StateDictFormat = "pth" | "npz" | "safetensors" | "legacy-pth" | "npy" | "unknown";

/** Identify a file by its magic bytes (zip archives are told apart by their members). */
export function detectFormat(bytes: Uint8Array): StateDictFormat {
  if (isZip(bytes)) {
    let names: string[];
    try {
      names = openZip(bytes).names();
    } catch {
      return "pth"; // let the pth reader report the zip damage
    }
    if (names.some((n) => n === "data.pkl" || n.endsWith("/data.pkl"))) return "pth";
    if (names.length > 0 && names.every((n) => n.endsWith(".npy"))) return "npz";
    return "unknown";
  }
  if (isSafetensors(bytes)) return "safetensors";
  if (isNpy(bytes)) return "npy";
  // Legacy torch.save (before torch 1.6, or _use_new_zipfile_serialization=False): a raw pickle
  // starting with PROTO and the LONG1 magic 0x1950a86a20f9469cfc6c; very old ones are tar files.
  if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5) return "legacy-pth";
  if (bytes.length >= 262 && new TextDecoder().decode(bytes.subarray(257, 262)) === "ustar") {
    return "legacy-pth";
  }
  return "unknown";
}

/** Read a state_dict from `.pth` (zip), `.safetensors` or `.npz` bytes, chosen by magic bytes. */
export function readStateDict(bytes: Uint8Array): StateDict {
  const fmt = detectFormat(bytes);
  switch (fmt) {
    case "pth":
      return readPth(bytes);
    case "npz":
      return readNpz(bytes);
    case "safetensors":
      return readSafetensors(bytes).tensors;
    case "legacy-pth":
      throw new UnsupportedError(
        "legacy (non-zip) torch.save format is not supported",
        "re-save with torch >= 1.6: torch.save(torch.load(path, weights_only=True), 'new.pth')",
      );
    case "npy":
      throw new UnsupportedError(
        "a single .npy array is not a state_dict",
        "save a dict of arrays with numpy.savez",
      );
    default:
      throw new CorruptFileError("unrecognised checkpoint format", {
        hint: "expected a torch.save .pth (zip), .safetensors or .npz file",
      });
  }
}
