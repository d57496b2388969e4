/** esbuild for the edge entries: ORT → its wasm-only build, binary assets external or inlined. */
import * as esbuild from "esbuild";
import { fileURLToPath } from "node:url";
import { ortBundlePath } from "./ort.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/**
 * Import this first in a generated entry: it runs before any other module of the bundle and records
 * `performance.now()` for the cold-start breakdown (runtime/adapter/shared.ts `coldStart`).
 */
export const T0_MODULE = "edge:t0";

const T0 = "globalThis.__repmlpEdgeT0 ??= performance.now();";

/**
 * Deno target, ORT wasm beside the entry: also start compiling it now, so V8 compiles on its
 * background threads while the rest of the bundle evaluates (runtime/adapter/deno/server.ts uses it).
 */
export function denoEarlyWasm(wasmFile: string): string {
  return `${T0}
try {
  if (Deno.env.get("BACKEND") === "native") throw 0;
  const p = Deno.readFile(new URL(${
    JSON.stringify(`./${wasmFile}`)
  }, import.meta.url)).then((b) => WebAssembly.compile(b));
  p.catch(() => {});
  globalThis.__repmlpEdgeWasm = p;
} catch { /* BACKEND=native, or no --allow-read/--allow-env: the engine reads it when needed */ }`;
}

const edgePlugin = (t0: string): esbuild.Plugin => ({
  name: "edge",
  setup(b) {
    // Every ORT flavour → the wasm-only build: no WebGPU on Deno Deploy or Workers.
    b.onResolve(
      { filter: /^onnxruntime-web(\/(webgpu|wasm|all|jspi))?$/ },
      () => ({ path: ortBundlePath() }),
    );
    b.onResolve({ filter: /^edge:t0$/ }, () => ({ path: "t0", namespace: "edge-t0" }));
    b.onLoad({ filter: /.*/, namespace: "edge-t0" }, () => ({ contents: t0, loader: "js" }));
  },
});

function externalAssets(exts: string[]): esbuild.Plugin {
  const re = new RegExp(`\\.(${exts.join("|")})$`);
  return {
    name: "edge-external-assets",
    setup(b) {
      b.onResolve(
        { filter: re },
        (a) => (a.path.startsWith("./") ? { path: a.path, external: true } : undefined),
      );
    },
  };
}

/** Bundle `entry` (TypeScript source) into one ES module. */
export async function bundleJs(
  entry: string,
  outFile: string,
  conditions: string[],
  opts: { minify: boolean; external: string[]; inlineBinary?: boolean; t0?: string },
): Promise<void> {
  const r = await esbuild.build({
    stdin: { contents: entry, resolveDir: ROOT, sourcefile: "edge-entry.ts", loader: "ts" },
    outfile: outFile,
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    mainFields: ["module", "main"],
    conditions,
    minify: opts.minify,
    legalComments: "eof",
    logLevel: "silent",
    loader: opts.inlineBinary ? { ".wasm": "binary", ".onnx": "binary" } : undefined,
    plugins: [edgePlugin(opts.t0 ?? T0), ...(opts.external.length ? [externalAssets(opts.external)] : [])],
  });
  for (const w of r.warnings) {
    if (!/import\.meta|webpackIgnore|empty-import-meta|will not be bundled/.test(w.text)) {
      console.warn(`esbuild: ${w.text}`);
    }
  }
}

/** Stop esbuild's service (call once when a build is done). */
export function stopEsbuild(): Promise<void> {
  return esbuild.stop();
}

/** A path as a JS string literal for a generated import. */
export const importPath = (p: string) => JSON.stringify(p.replaceAll("\\", "/"));

/** Absolute path of a repository file. */
export const repoPath = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));
