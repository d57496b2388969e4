/**
 * onnxruntime-node ("native" backend): the CPU build of ONNX Runtime loaded through N-API. Works in
 * Deno and Node (the npm package ships its binaries; no install script needed). Never used on
 * Workers: only imported dynamically when `backend: "native"` is asked for.
 */
import { RepmlpError, UnsupportedError } from "../errors.ts";
import type { Engine, EngineOptions, EngineSession } from "./engine.ts";

type OrtNode = typeof import("onnxruntime-node");

let mod: Promise<OrtNode> | null = null;

/** onnxruntime-node engine; throws UnsupportedError when the native addon cannot load. */
export async function ortNodeEngine(o: EngineOptions): Promise<Engine> {
  mod ??= import("onnxruntime-node") as Promise<OrtNode>;
  let ort: OrtNode;
  try {
    ort = await mod;
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
          {
            cause: e,
          },
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
