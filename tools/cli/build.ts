/** `deno task build`: the face API bundled for Deno (dist/deno) and Cloudflare Workers (dist/cloudflare). */
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import type { BundleDType } from "../../runtime/src/io/bundle.ts";
import { DTYPES } from "../../runtime/adapter/config.ts";
import { chooseDetector, chooseModels, readManifest } from "../../runtime/src/server/manifest.ts";
import { buildEdge } from "../build/mod.ts";
import { main, parseCli } from "./_cli.ts";

const USAGE = `deno task build [options]

Bundles the face API for Deno (dist/deno) and Cloudflare Workers (dist/cloudflare). Each model ships
as the ONNX graph built from its bundle (the graph deno task serve builds at load).

Default models: the weights/manifest.json default of every task, int8 variants (as deno task serve).

  --face <bundle>        face model bundle; repeatable; first is the default
  --classifier <bundle>  classifier bundle; repeatable
  --no-classifier        ship no classifier
  --workers-classifier   ship the classifier to Workers too (default: Deno only; with the real face
                         recogniser, face + classifier + detector exceed the Workers 128 MB estimate)
  --detector <onnx|none> face detector graph (default: the manifest's default detector)
  --manifest <file>      weights manifest (default weights/manifest.json)
  --target <t>           deno | cloudflare | all (default all)
  --dtype <d>            bundle dtype on every target: int8 (default) | fp16 | fp32 | keep
  --int8 <mode>          int8 bundles: weights (default, dequantised) | dynamic (MatMulInteger)
  --inline               embed ORT wasm and the graphs in dist/deno/server.mjs
  --out <dir>            output root (default dist)
  --name <worker>        Worker name (default repmlp-edge)
  --d1-name <name>       D1 database name (default repmlp-gallery)
  --d1-id <uuid>         D1 database id (from \`npx wrangler d1 create\`)
  --no-minify            readable output`;

function oneOf<T extends string>(flag: string, v: string, all: readonly T[]): T {
  if (!all.includes(v as T)) throw new InvalidArgumentError(`unknown --${flag} '${v}' (${all.join(", ")})`);
  return v as T;
}

if (import.meta.main) {
  await main(async () => {
    const { values: v } = parseCli(
      USAGE,
      {
        face: { type: "string", multiple: true },
        classifier: { type: "string", multiple: true },
        detector: { type: "string" },
        target: { type: "string", default: "all" },
        dtype: { type: "string" },
        inline: { type: "boolean" },
        int8: { type: "string", default: "weights" },
        out: { type: "string" },
        name: { type: "string" },
        "d1-name": { type: "string" },
        "d1-id": { type: "string" },
        "no-minify": { type: "boolean" },
        "no-classifier": { type: "boolean" },
        "workers-classifier": { type: "boolean" },
        manifest: { type: "string", default: "weights/manifest.json" },
      },
      Deno.args,
      { positionals: false },
    );
    const dtype = v.dtype === undefined ? undefined : oneOf("dtype", v.dtype, DTYPES);
    const target = oneOf("target", v.target!, ["all", "deno", "cloudflare"] as const);
    const models = await chooseModels({
      manifestPath: v.manifest!,
      faces: v.face,
      classifiers: v.classifier,
      noClassifier: v["no-classifier"],
      dtype,
    });
    const det = chooseDetector(await readManifest(v.manifest!), v.manifest!, v.detector);
    await buildEdge({
      models,
      detector: det ? { path: det.path, name: det.entry?.name } : undefined,
      // Manifest defaults are already picked in the dtype; bundles given by path ship as they are
      // unless --dtype asks for another (as MODEL=… for deno task serve).
      dtype: (dtype ?? "keep") as BundleDType | "keep",
      int8: oneOf("int8", v.int8!, ["weights", "dynamic"] as const),
      targets: target === "all" ? ["deno", "cloudflare"] : [target],
      inline: v.inline,
      outDir: v.out,
      workerName: v.name,
      d1DatabaseName: v["d1-name"],
      d1DatabaseId: v["d1-id"],
      minify: !v["no-minify"],
      workersClassifier: v["workers-classifier"],
    });
  });
}
