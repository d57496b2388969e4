/**
 * The edge build as a library (`deno task build` is its CLI, tools/cli/build.ts): prepare the models
 * once per dtype (bundle → served-model info + ONNX graph, models.ts), then bundle each target with
 * esbuild (deno_target.ts, cloudflare_target.ts) and check it against the platform limits (report.ts).
 */
import { join } from "node:path";
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import type { BundleDType } from "../../runtime/src/io/bundle.ts";
import { DEFAULT_BUNDLE_DTYPE } from "../../runtime/src/server/manifest.ts";
import { fmtBytes } from "../cli/_cli.ts";
import { repoPath, stopEsbuild } from "./bundle_js.ts";
import { buildCloudflare, type CloudflareTargetOptions } from "./cloudflare_target.ts";
import { buildDeno, type DenoTargetOptions } from "./deno_target.ts";
import { type Int8Mode, type ModelSpec, prepareDetector, prepareModels } from "./models.ts";
import { formatReport, type TargetReport } from "./report.ts";

export { PLACEHOLDER_D1_ID } from "./cloudflare_target.ts";
export {
  type Int8Mode,
  type ModelSpec,
  type PreparedDetector,
  prepareDetector,
  type PreparedModel,
  prepareModels,
} from "./models.ts";
export { ortWasmPath } from "./ort.ts";
export { estimateMemory, formatReport, type TargetReport, WORKERS_LIMITS } from "./report.ts";

/** Options of {@link buildEdge}. */
export interface BuildOptions extends DenoTargetOptions, CloudflareTargetOptions {
  /** Output root (default `dist`). */
  outDir?: string;
  targets?: ("deno" | "cloudflare")[];
  /** Models to ship (at least one face model). */
  models: ModelSpec[];
  /** Face detector ONNX to ship (weights/manifest.json `detectors`); none: the edge centre-crops. */
  detector?: { path: string; name?: string };
  /**
   * Bundle dtype on every target (default int8, {@link DEFAULT_BUNDLE_DTYPE}): the manifest's variant
   * of that dtype, else re-encoded at build time. `"keep"` ships each bundle as it is.
   */
  dtype?: BundleDType | "keep";
  /** How int8 bundles run (default "weights": dequantised, same numbers as `deno task serve`). */
  int8?: Int8Mode;
  /** Do not print the report. */
  quiet?: boolean;
}

/** Build the requested targets; throws InvalidArgumentError when a target exceeds a hard limit. */
export async function buildEdge(o: BuildOptions): Promise<TargetReport[]> {
  if (!o.models.some((m) => m.entry.task === "face")) {
    throw new InvalidArgumentError("no face model given", "pass --face <bundle.safetensors>");
  }
  const outDir = o.outDir ?? repoPath("dist");
  const targets = o.targets ?? ["deno", "cloudflare"];
  const reports: TargetReport[] = [];
  try {
    // One dtype for every target: the same graph, so the same embedding everywhere.
    const models = await prepareModels(o.models, o.dtype ?? DEFAULT_BUNDLE_DTYPE as BundleDType, o.int8);
    const detector = o.detector ? await prepareDetector(o.detector.path, o.detector.name) : undefined;
    for (const t of targets) {
      const r = t === "deno"
        ? await buildDeno(join(outDir, "deno"), models, o, detector)
        : await buildCloudflare(join(outDir, "cloudflare"), models, o, detector);
      if (!o.quiet) console.log(formatReport(r) + "\n");
      reports.push(r);
    }
  } finally {
    await stopEsbuild();
  }
  const bad = reports.flatMap((r) => r.checks.filter((c) => c.fatal && !c.ok).map((c) => ({ r, c })));
  if (bad.length) {
    const { r, c } = bad[0];
    const big = [...r.artifacts].sort((a, b) => b.bytes - a.bytes).slice(0, 3).map((a) =>
      `${a.file} ${fmtBytes(a.bytes)}`
    );
    throw new InvalidArgumentError(
      `${r.target} build is too large: ${c.name} ${fmtBytes(c.value)} > ${fmtBytes(c.limit)} (largest: ${
        big.join(", ")
      })`,
      "ship a smaller model, or --int8 dynamic",
    );
  }
  return reports;
}
