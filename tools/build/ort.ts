/** The onnxruntime-web files the edge builds ship, found through the package resolution (no node_modules paths). */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { InvalidArgumentError } from "../../runtime/src/errors.ts";

/** onnxruntime-web version the builds are made and tested with (runtime/deno.json pins the same). */
export const ORT_VERSION = "1.30.0";
/** ORT's SIMD wasm binary (runs single-threaded when numThreads = 1). */
export const ORT_WASM = "ort-wasm-simd-threaded.wasm";

function distDir(): string {
  let entry: string;
  try {
    entry = fileURLToPath(import.meta.resolve("onnxruntime-web"));
  } catch (e) {
    throw new InvalidArgumentError(
      `onnxruntime-web cannot be resolved: ${(e as Error).message}`,
      "run `deno install` in the repository root first",
    );
  }
  const dir = dirname(entry); // …/onnxruntime-web/dist
  const pkg = JSON.parse(Deno.readTextFileSync(join(dir, "..", "package.json"))) as { version?: string };
  if (pkg.version !== ORT_VERSION) {
    throw new InvalidArgumentError(`onnxruntime-web ${pkg.version} is installed, expected ${ORT_VERSION}`);
  }
  return dir;
}

/** Absolute path of ORT's SIMD wasm binary. */
export function ortWasmPath(): string {
  return join(distDir(), ORT_WASM);
}

/** The wasm-only browser build of ORT (its Emscripten glue embedded; no worker, no fetch of .mjs). */
export function ortBundlePath(): string {
  return join(distDir(), "ort.wasm.bundle.min.mjs");
}
