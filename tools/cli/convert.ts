/**
 * deno task convert <checkpoint.pth|.safetensors|.npz> --arch <name> [--kwargs '<json>'] --out <bundle>
 *                   [--dtype fp32|fp16|int8] [--meta '<json>']
 */
import cliProgress from "cli-progress";
import { archDoc, archNames } from "../../runtime/src/arch/registry.ts";
import { convertStateDict, exampleInputShape, importTfjsWeights } from "../../runtime/src/convert.ts";
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import { readFileBytes, readTfjsWeightsFile } from "../../runtime/src/io/files.ts";
import { isTfjsManifest } from "../../runtime/src/io/tfjs.ts";
import { readSafetensors } from "../../runtime/src/io/safetensors.ts";
import { detectFormat, readStateDict } from "../../runtime/src/io/statedict.ts";
import type { BundleDType } from "../../runtime/src/io/bundle.ts";
import { bundleFromConversion, loadBundle } from "../../runtime/src/deploy_model.ts";
import { randn } from "../../runtime/src/random.ts";
import { forward } from "../../runtime/src/reference.ts";
import { maxAbs, maxAbsDiff, numel, type StateDict } from "../../runtime/src/tensor.ts";
import { fmtBytes, main, parseCli, parseHW } from "./_cli.ts";

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

function parseJson(s: string | undefined, what: string): Record<string, unknown> {
  if (!s) return {};
  try {
    const v = JSON.parse(s);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not a JSON object");
    return v;
  } catch (e) {
    throw new InvalidArgumentError(
      `${what} is not a JSON object: ${(e as Error).message}`,
      `e.g. ${what} '{"h": 7}'`,
    );
  }
}

function floatBytes(sd: StateDict): number {
  let n = 0;
  for (const t of sd.values()) n += numel(t.shape) * (t.dtype === "int64" || t.dtype === "float64" ? 8 : 4);
  return n;
}

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
  const kwargs = parseJson(values.kwargs, "--kwargs");
  const extraMeta = parseJson(values.meta, "--meta");
  const inputHW = parseHW(values["input-hw"]);

  const bytes = await readFileBytes(src);
  const format = isTfjsManifest(bytes) ? "tfjs" : detectFormat(bytes);
  let sd: StateDict;
  let metadata: Record<string, string> = {};
  let arch = values.arch;
  if (format === "tfjs") {
    // The manifest names its weights: the architecture is recognised from them (--arch forces one).
    const imp = importTfjsWeights(await readTfjsWeightsFile(src), values.arch);
    sd = imp.stateDict;
    metadata = imp.metadata;
    arch = undefined;
    console.log(`import   tfjs weights → ${imp.desc.arch} (${sd.size} tensors)`);
  } else if (format === "safetensors") {
    const r = readSafetensors(bytes);
    sd = r.tensors;
    metadata = r.metadata;
  } else sd = readStateDict(bytes);
  console.log(`read     ${src}: ${format}, ${sd.size} tensors, ${fmtBytes(bytes.length)}`);
  if (values.arch) console.log(`arch     ${values.arch}: ${archDoc(values.arch)}`);

  const bar = new cliProgress.SingleBar({
    format: "fold     [{bar}] {value}/{total} {layer}",
    hideCursor: true,
  }, cliProgress.Presets.shades_classic);
  let started = false;
  const t0 = performance.now();
  const res = convertStateDict(sd, {
    arch,
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

  const meta = {
    ...(metadata.repmlp_edge_meta ? JSON.parse(metadata.repmlp_edge_meta) : {}),
    ...extraMeta,
    provenance: {
      source: src.split("/").pop(),
      source_format: format,
      source_layout: res.mode,
      converted_by: "repmlp-edge convert",
      converted_at: new Date().toISOString(),
      fold_check_max_abs_diff: res.check?.maxAbsDiff ?? null,
    },
  };
  let out = await bundleFromConversion(res, dtype, meta);
  // Precision report: the stored bundle's output vs the float32 deploy model on the same input.
  if (dtype !== "fp32") {
    const loaded = await loadBundle(out);
    const x = randn(exampleInputShape(desc, 2, inputHW), 99);
    const y32 = forward(desc, res.deploy, x, "deploy");
    const yq = forward(desc, loaded.tensors, x, "deploy");
    const abs = maxAbsDiff(y32.data, yq.data), scale = maxAbs(y32.data);
    meta.provenance = {
      ...meta.provenance,
      [`${dtype}_max_abs_err`]: abs,
      [`${dtype}_rel_err`]: abs / scale,
    };
    out = await bundleFromConversion(res, dtype, meta);
    console.log(
      `${dtype.padEnd(8)} output vs fp32: max abs err ${abs.toExponential(2)}, relative ${
        (abs / scale).toExponential(2)
      }`,
    );
  }
  await Deno.writeFile(values.out, out);
  const before = floatBytes(sd), deployed = floatBytes(res.deploy);
  const fp32Size = dtype === "fp32" ? out.length : (await bundleFromConversion(res, "fp32", meta)).length;
  console.log(
    `sizes    checkpoint tensors ${fmtBytes(before)} → deploy tensors ${
      fmtBytes(deployed)
    } → ${dtype} bundle ${fmtBytes(out.length)} (${(out.length / fp32Size).toFixed(3)}× the fp32 bundle)`,
  );
  console.log(`wrote    ${values.out}`);
});
