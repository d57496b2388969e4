/**
 * deno task convert <checkpoint.pth|.safetensors|.npz> --arch <name> [--kwargs '<json>'] --out <bundle>
 *                   [--dtype fp32|fp16|int8] [--meta '<json>']
 */
import cliProgress from "cli-progress";
import { archDoc, archNames } from "../../runtime/src/arch/registry.ts";
import { convertStateDict } from "../../runtime/src/convert.ts";
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import type { BundleDType } from "../../runtime/src/io/bundle.ts";
import { loadCheckpoint, packConversion, stateDictBytes } from "../../runtime/src/pack.ts";
import { fmtBytes, main, parseCli, parseHW, parseJsonObject } from "./_cli.ts";

const USAGE =
  `usage: deno task convert <checkpoint | tfjs weights_manifest.json> --arch <name> [--kwargs '<json>'] --out <bundle.safetensors>
                         [--dtype fp32|fp16|int8] [--meta '<json>'] [--input-hw H,W]

Reads a PyTorch state_dict (.pth zip, .safetensors or .npz) of an official RepMLP class, folds it
into deploy mode (already-folded checkpoints are accepted), checks the fold on a random input and
writes a bundle. Checkpoints made by 'deno task train' carry their architecture: --arch is optional.
A TensorFlow.js weights manifest (face-api's face_recognition_model-weights_manifest.json + .bin) is
recognised from its weight names and keeps the source's preprocessing in the bundle meta.

--arch     ${archNames().join(", ")}
--kwargs   the Python constructor's kwargs as JSON; what the checkpoint's shapes determine is inferred
--meta     extra bundle meta as JSON (e.g. {"preprocess": {...}, "labels": [...]})
--input-hw size of the fold check's random input (default: the model's own size; RepMLPNet takes
           any size whose stage maps divide into the stages' hs×ws partitions)`;

await main(async () => {
  const { values, positionals } = parseCli(USAGE, {
    arch: { type: "string" },
    kwargs: { type: "string" },
    out: { type: "string", short: "o" },
    dtype: { type: "string", default: "fp32" },
    meta: { type: "string" },
    "input-hw": { type: "string" },
  });
  const [src] = positionals;
  if (!src || positionals.length > 1) {
    throw new InvalidArgumentError("give exactly one checkpoint path", USAGE);
  }
  if (!values.out) throw new InvalidArgumentError("--out <bundle> is required");
  const dtype = values.dtype as BundleDType;
  if (!["fp32", "fp16", "int8"].includes(dtype)) {
    throw new InvalidArgumentError(`--dtype must be fp32, fp16 or int8, got '${dtype}'`);
  }
  if (values.arch && !archNames().includes(values.arch)) {
    throw new InvalidArgumentError(
      `unknown --arch '${values.arch}'`,
      `choose one of: ${archNames().join(", ")}`,
    );
  }
  const kwargs = parseJsonObject(values.kwargs, "--kwargs") ?? {};
  const extraMeta = parseJsonObject(values.meta, "--meta") ?? {};
  const inputHW = parseHW(values["input-hw"]);

  const ckpt = await loadCheckpoint(src, values.arch);
  const { format, tensors: sd, metadata } = ckpt;
  if (ckpt.imported) console.log(`import   tfjs weights → ${ckpt.imported.arch} (${sd.size} tensors)`);
  console.log(`read     ${src}: ${format}, ${sd.size} tensors, ${fmtBytes(ckpt.bytes)}`);
  if (values.arch) console.log(`arch     ${values.arch}: ${archDoc(values.arch)}`);

  const bar = new cliProgress.SingleBar({
    format: "fold     [{bar}] {value}/{total} {layer}",
    hideCursor: true,
  }, cliProgress.Presets.shades_classic);
  let started = false;
  const t0 = performance.now();
  const res = convertStateDict(sd, {
    arch: ckpt.arch,
    kwargs,
    metadata,
    inputHW,
    onProgress(done, total, layer) {
      // Only worth a bar when there is enough to fold to notice.
      if (total < 8) return;
      if (!started) bar.start(total, 0, { layer: "" }), started = true;
      bar.update(done, { layer });
    },
  });
  if (started) bar.stop();
  const ms = performance.now() - t0;
  const { desc } = res;
  console.log(`model    ${desc.arch}(${JSON.stringify(desc.kwargs)})`);
  if (res.inferred.length) console.log(`inferred ${res.inferred.join(", ")} (from the checkpoint's shapes)`);
  console.log(
    `layout   ${res.mode === "train" ? "training-time → folded" : "already deploy-mode (no fold needed)"}`,
  );
  if (res.check) {
    const c = res.check;
    console.log(
      `check    train-structure vs folded on random input [${c.inputShape}]: max abs diff ${
        c.maxAbsDiff.toExponential(2)
      } (max |out| ${c.maxAbsOut.toFixed(3)}) in ${ms.toFixed(0)} ms`,
    );
  }

  const { bytes: out, precision, fp32Bytes } = await packConversion(res, {
    dtype,
    source: { name: src.split("/").pop()!, format },
    metadata,
    extraMeta,
    inputHW,
  });
  if (precision) {
    console.log(
      `${dtype.padEnd(8)} output vs fp32: max abs err ${precision.maxAbsErr.toExponential(2)}, relative ${
        precision.relErr.toExponential(2)
      }`,
    );
  }
  await Deno.writeFile(values.out, out);
  const before = stateDictBytes(sd), deployed = stateDictBytes(res.deploy);
  console.log(
    `sizes    checkpoint tensors ${fmtBytes(before)} → deploy tensors ${
      fmtBytes(deployed)
    } → ${dtype} bundle ${fmtBytes(out.length)} (${(out.length / fp32Bytes).toFixed(3)}× the fp32 bundle)`,
  );
  console.log(`wrote    ${values.out}`);
});
