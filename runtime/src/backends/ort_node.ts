/**
 * onnxruntime-node ("native" backend): the CPU build of ONNX Runtime loaded through N-API. Works in
 * Deno and Node (the npm package ships its binaries; no install script needed), and on hosts that
 * allow Node addons (self-hosted Deno; Deno Deploy per its docs). Never used on Workers.
 *
 * The package is imported through {@link ORT_NODE_SPECIFIER} held in a variable: a specifier Deno and
 * esbuild cannot analyse, so neither `deno task serve` (runtime import map) nor an edge bundle installs
 * or bundles it unless `backend: "native"` is asked for at run time.
 */
import { RepmlpError, UnsupportedError } from "../errors.ts";
import type { Engine, EngineOptions, EngineSession } from "./engine.ts";

/** The pinned onnxruntime-node; equal to the pin in tools/deno.json (a test checks). */
export const ORT_NODE_SPECIFIER = "npm:onnxruntime-node@1.30.0";

// The subset used here; onnxruntime-web's typings describe the same (onnxruntime-common) API.
type OrtNode = Pick<typeof import("onnxruntime-web"), "InferenceSession" | "Tensor">;

let mod: Promise<OrtNode> | null = null;
let loadMs: number | null = null;

/** Time the first successful import of onnxruntime-node took (addon load), null before. */
export function ortNodeLoadMs(): number | null {
  return loadMs;
}

/** onnxruntime-node engine; throws UnsupportedError when the native addon cannot load. */
export async function ortNodeEngine(o: EngineOptions): Promise<Engine> {
  const t0 = performance.now();
  const specifier: string = ORT_NODE_SPECIFIER;
  mod ??= import(specifier).then((m) => (m.default?.InferenceSession ? m.default : m) as OrtNode);
  let ort: OrtNode;
  try {
    ort = await mod;
    loadMs ??= performance.now() - t0;
  } catch (e) {
    mod = null;
    throw new UnsupportedError(
      `onnxruntime-node could not load here: ${(e as Error).message}`,
      "the native backend needs a host that allows Node addons (self-hosted Deno/Node); use --backend wasm",
    );
  }
  const threads = Math.max(1, Math.floor(o.threads ?? 1));
  return {
    provider: "cpu (onnxruntime-node)",
    async create(model: Uint8Array): Promise<EngineSession> {
      let s: Awaited<ReturnType<typeof ort.InferenceSession.create>>;
      try {
        s = await ort.InferenceSession.create(model, {
          executionProviders: ["cpu"],
          intraOpNumThreads: threads,
          interOpNumThreads: 1,
          graphOptimizationLevel: "all",
        });
      } catch (e) {
        throw new RepmlpError(
          "runtime",
          `onnxruntime-node could not create a session: ${(e as Error).message}`,
          { cause: e },
        );
      }
      const inName = s.inputNames[0];
      const runAll = async (data: Float32Array, dims: number[], names: readonly string[]) => {
        try {
          const r = await s.run({ [inName]: new ort.Tensor("float32", data, dims) }, names);
          return names.map((n) => ({ data: r[n].data as Float32Array, dims: [...r[n].dims] }));
        } catch (e) {
          throw new RepmlpError("runtime", `onnxruntime-node run failed: ${(e as Error).message}`, {
            cause: e,
          });
        }
      };
      return {
        async run(data, dims) {
          return (await runAll(data, dims, [s.outputNames[0]]))[0];
        },
        runAll(data, dims) {
          return runAll(data, dims, s.outputNames);
        },
        async release() {
          await s.release();
        },
      };
    },
  };
}
