/**
 * deno task predict <bundle> --input <x.npy> --out <y.npy> [--backend auto|webgpu|wasm|native|reference]
 * Input: float32 NCHW (already preprocessed) or uint8 NCHW raw pixels (the bundle's own preprocessing
 * is applied), at any size the model takes (RepMLPNet: any whose stage maps divide into the
 * partitions; one ORT session is built per size). Output: float32 .npy.
 */
import { InvalidArgumentError, InvalidInputError } from "../../runtime/src/errors.ts";
import { readFileBytes } from "../../runtime/src/io/files.ts";
import { readNpy, writeNpy } from "../../runtime/src/io/npy.ts";
import { loadBundle } from "../../runtime/src/deploy_model.ts";
import { preprocess } from "../../runtime/src/image/normalize.ts";
import { acceptsAnyHW } from "../../runtime/src/arch/shapes.ts";
import { type Backend, BACKENDS, createSession, defaultThreads } from "../../runtime/src/backends/mod.ts";
import { type F32, toF32 } from "../../runtime/src/tensor.ts";
import { main, parseCli } from "./_cli.ts";

const USAGE = `usage: deno task predict <bundle> --input <x.npy> --out <y.npy> [--backend ${
  BACKENDS.join("|")
}]
                         [--threads N] [--precision fp32|fp16]

--input    float32 NCHW (preprocessed), or uint8 NCHW raw pixels (the bundle's preprocessing is applied)
--backend  auto (default): WebGPU on a hardware adapter, else WASM; native = onnxruntime-node`;

await main(async () => {
  const { values, positionals } = parseCli(USAGE, {
    input: { type: "string", short: "i" },
    out: { type: "string", short: "o" },
    backend: { type: "string", default: "auto" },
    threads: { type: "string" },
    precision: { type: "string" },
  });
  if (positionals.length !== 1) throw new InvalidArgumentError("give exactly one bundle path", USAGE);
  if (!values.input || !values.out) throw new InvalidArgumentError("--input and --out are required", USAGE);
  const backend = values.backend as Backend;
  if (!BACKENDS.includes(backend)) {
    throw new InvalidArgumentError(`unknown --backend '${backend}'`, `choose one of: ${BACKENDS.join(", ")}`);
  }
  const threads = values.threads ? Number(values.threads) : defaultThreads();
  if (!Number.isInteger(threads) || threads < 1) throw new InvalidArgumentError("--threads must be ≥ 1");
  const precision = values.precision as "fp32" | "fp16" | undefined;
  if (precision && precision !== "fp32" && precision !== "fp16") {
    throw new InvalidArgumentError("--precision must be fp32 or fp16");
  }
  const model = await loadBundle(await readFileBytes(positionals[0]));
  const t = readNpy(await readFileBytes(values.input));
  let x: F32;
  if (t.dtype === "uint8") {
    x = preprocess(model.meta.preprocess, t.data as Uint8Array, t.shape, { anyHW: acceptsAnyHW(model.desc) });
  } else if (t.dtype === "float32" || t.dtype === "float64") x = toF32(t);
  else throw new InvalidInputError(`--input must be float32 or uint8 NCHW, got ${t.dtype}`);
  const session = await createSession(model, {
    backend,
    threads,
    precision,
    // Build (and warm up) the graph for this input's size rather than the model's default one.
    inputHW: acceptsAnyHW(model.desc) && x.shape.length === 4 ? [x.shape[2], x.shape[3]] : undefined,
    log: (m) => console.error(`note     ${m}`),
  });
  try {
    const t0 = performance.now();
    const y = await session.run(x);
    const ms = performance.now() - t0;
    await Deno.writeFile(values.out, writeNpy(y));
    console.log(
      `predict  ${session.backend} (${session.provider}, ${session.precision}): [${x.shape}] → [${y.shape}] in ${
        ms.toFixed(1)
      } ms → ${values.out}`,
    );
  } finally {
    await session.dispose();
  }
});
