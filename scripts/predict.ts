/**
 * deno task predict <bundle> --input <x.npy> --out <y.npy> [--backend reference]
 * Input: float32 NCHW (already preprocessed). Output: float32 .npy.
 */
import { InvalidArgumentError, InvalidInputError } from "../src/errors.ts";
import { readFileBytes } from "../src/io/files.ts";
import { readNpy, writeNpy } from "../src/io/npy.ts";
import { loadBundle } from "../src/model.ts";
import { forward } from "../src/reference.ts";
import { type F32, toF32 } from "../src/tensor.ts";
import { main, parseCli } from "./_cli.ts";

const BACKENDS = ["reference"];
const USAGE = `usage: deno task predict <bundle> --input <x.npy> --out <y.npy> [--backend ${BACKENDS.join("|")}]

--input  float32 (or float64) NCHW array`;

await main(async () => {
  const { values, positionals } = parseCli(USAGE, {
    input: { type: "string", short: "i" },
    out: { type: "string", short: "o" },
    backend: { type: "string", default: "reference" },
  });
  if (positionals.length !== 1) throw new InvalidArgumentError("give exactly one bundle path", USAGE);
  if (!values.input || !values.out) throw new InvalidArgumentError("--input and --out are required", USAGE);
  if (!BACKENDS.includes(values.backend!)) {
    throw new InvalidArgumentError(`unknown --backend '${values.backend}'`, `choose one of: ${BACKENDS.join(", ")}`);
  }
  const model = await loadBundle(await readFileBytes(positionals[0]));
  const t = readNpy(await readFileBytes(values.input));
  if (t.dtype !== "float32" && t.dtype !== "float64") {
    throw new InvalidInputError(`--input must be float32 NCHW, got ${t.dtype}`);
  }
  const x: F32 = toF32(t);
  const t0 = performance.now();
  const y = forward(model.desc, model.tensors, x, "deploy");
  const ms = performance.now() - t0;
  await Deno.writeFile(values.out, writeNpy(y));
  console.log(`predict  ${values.backend}: input [${x.shape}] → output [${y.shape}] in ${ms.toFixed(1)} ms → ${values.out}`);
});
