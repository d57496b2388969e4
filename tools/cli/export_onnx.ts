/**
 * deno task export-onnx <bundle | checkpoint> --out <model.onnx> [options]
 * Writes the folded model as a standard ONNX file (opset 17, dynamic batch axis) for any ONNX runtime.
 */
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import { convertStateDict, MODEL_METADATA_KEY } from "../../runtime/src/convert.ts";
import { readFileBytes } from "../../runtime/src/io/files.ts";
import { readSafetensors } from "../../runtime/src/io/safetensors.ts";
import { BUNDLE_FORMAT } from "../../runtime/src/io/bundle.ts";
import { detectFormat, readStateDict } from "../../runtime/src/io/statedict.ts";
import { loadBundle } from "../../runtime/src/deploy_model.ts";
import { buildOnnx, type Fc3Impl, type Precision } from "../../runtime/src/onnx/graph.ts";
import type { ModelDesc } from "../../runtime/src/arch/ir.ts";
import type { StateDict } from "../../runtime/src/tensor.ts";
import { randn } from "../../runtime/src/random.ts";
import { forward } from "../../runtime/src/reference.ts";
import { maxAbs, maxAbsDiff } from "../../runtime/src/tensor.ts";
import { fmtBytes, main, parseCli, parseHW } from "./_cli.ts";

const USAGE =
  `usage: deno task export-onnx <bundle.safetensors | checkpoint.pth|.npz|.safetensors> --out <model.onnx>
       [--input-hw H,W]              input size of the graph (one graph per size): required for RepMLPBlock /
                                     RepMLPNetUnit; any size that fits for RepMLPNet (default: its native size)
       [--precision fp32|fp16|int8-dynamic|int8-qdq]   default fp32
       [--fc3 matmul|conv]           partition FC as batched MatMul (default, faster) or the official grouped 1x1 Conv
       [--structure deploy|train]    train = unfolded training structure (needs a training checkpoint)
       [--arch NAME --kwargs JSON]   for checkpoints that do not record their architecture
       [--check]                     run the exported file with onnxruntime and compare with the reference forward`;

function oneOf<T extends string>(v: string, allowed: readonly T[], flag: string): T {
  if (!(allowed as readonly string[]).includes(v)) {
    throw new InvalidArgumentError(`${flag} must be one of ${allowed.join(", ")}, got '${v}'`);
  }
  return v as T;
}

await main(async () => {
  const { values, positionals } = parseCli(USAGE, {
    out: { type: "string", short: "o" },
    "input-hw": { type: "string" },
    precision: { type: "string", default: "fp32" },
    fc3: { type: "string", default: "matmul" },
    structure: { type: "string", default: "deploy" },
    arch: { type: "string" },
    kwargs: { type: "string" },
    check: { type: "boolean", default: false },
  });
  if (positionals.length !== 1) {
    throw new InvalidArgumentError("give exactly one bundle or checkpoint path", USAGE);
  }
  if (!values.out) throw new InvalidArgumentError("--out <model.onnx> is required", USAGE);
  const precision = oneOf<Precision>(
    values.precision!,
    ["fp32", "fp16", "int8-dynamic", "int8-qdq"],
    "--precision",
  );
  const fc3 = oneOf<Fc3Impl>(values.fc3!, ["matmul", "conv"], "--fc3");
  const structure = oneOf(values.structure!, ["deploy", "train"] as const, "--structure");
  const inputHW = parseHW(values["input-hw"]);

  const bytes = await readFileBytes(positionals[0]);
  let desc: ModelDesc, sd: StateDict, source: string;
  const isBundle = detectFormat(bytes) === "safetensors" &&
    readSafetensors(bytes).metadata.format === BUNDLE_FORMAT;
  if (isBundle) {
    const m = await loadBundle(bytes);
    desc = m.desc;
    sd = m.tensors;
    source = `bundle (${m.dtype}, deploy)`;
  } else {
    let kwargs: Record<string, unknown> | undefined;
    if (values.kwargs) {
      try {
        kwargs = JSON.parse(values.kwargs);
      } catch (e) {
        throw new InvalidArgumentError(`--kwargs is not valid JSON: ${(e as Error).message}`);
      }
    }
    const raw = readStateDict(bytes);
    const metadata = detectFormat(bytes) === "safetensors" ? readSafetensors(bytes).metadata : {};
    const r = convertStateDict(raw, { arch: values.arch, kwargs, metadata });
    desc = r.desc;
    sd = structure === "train" ? raw : r.deploy;
    source = `checkpoint (${r.mode} layout${metadata[MODEL_METADATA_KEY] ? ", own metadata" : ""})`;
  }
  const t0 = performance.now();
  const g = buildOnnx(desc, sd, { structure, precision, fc3, inputHW });
  await Deno.writeFile(values.out, g.bytes);
  console.log(`model    ${desc.arch}(${JSON.stringify(desc.kwargs)}) from ${source}`);
  console.log(
    `onnx     ${g.structure} structure, ${g.precision}, fc3=${g.fc3}: ${g.nodes} nodes, weights ${
      fmtBytes(g.weightBytes)
    }, input [batch, ${g.inputShape}] → output [batch, ${g.outputShape}] in ${
      (performance.now() - t0).toFixed(0)
    } ms`,
  );
  console.log(`wrote    ${values.out} (${fmtBytes(g.bytes.length)}, opset 17, dynamic batch axis "batch")`);
  if (values.check) {
    const { ortNodeEngine } = await import("../../runtime/src/backends/ort_node.ts");
    const eng = await ortNodeEngine({ threads: 1 });
    const s = await eng.create(g.bytes);
    const x = randn([2, ...g.inputShape], 7);
    const y = await s.run(x.data, x.shape);
    const ref = forward(desc, sd, x, structure);
    const d = maxAbsDiff(y.data, ref.data);
    console.log(
      `check    onnxruntime-node vs reference forward on random [2, ${g.inputShape}]: max abs diff ${
        d.toExponential(2)
      } (max |out| ${maxAbs(ref.data).toFixed(3)})`,
    );
    await s.release();
  }
});
