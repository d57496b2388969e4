/** Build reports: artifact sizes (raw and gzip) against the platform limits, printed as a table. */
import { join, relative } from "node:path";
import type { BuildInfo } from "../../runtime/adapter/shared.ts";
import { fmtBytes } from "../cli/_cli.ts";
import type { PreparedDetector, PreparedModel } from "./models.ts";
import { ORT_VERSION, ORT_WASM } from "./ort.ts";

/** Workers platform limits (developers.cloudflare.com/workers/platform/limits, 2026). */
export const WORKERS_LIMITS = {
  /** Worker size, all plans since 2026. */
  sizeBytes: 64 * 2 ** 20,
  /** Older plans: compressed upload size (3 MiB Free, 10 MiB Paid). */
  legacyFreeGzipBytes: 3 * 2 ** 20,
  legacyPaidGzipBytes: 10 * 2 ** 20,
  /** Per isolate: JS heap + wasm memory. */
  memoryBytes: 128 * 2 ** 20,
};

/** One file of a build, raw and gzip. */
export interface Artifact {
  file: string;
  bytes: number;
  gzipBytes: number;
}

/** A limit check of a target. */
export interface Check {
  name: string;
  value: number;
  limit: number;
  ok: boolean;
  fatal: boolean;
}

/** Result of one target. */
export interface TargetReport {
  target: "deno" | "cloudflare";
  dir: string;
  artifacts: Artifact[];
  totalBytes: number;
  totalGzipBytes: number;
  checks: Check[];
  build: BuildInfo;
  /** Shipped models with the entry (name, threshold, labels …) the target serves them with. */
  models: { file: string; entry: PreparedModel["entry"] }[];
}

async function gzipSize(bytes: Uint8Array): Promise<number> {
  const s = new Blob([bytes as BlobPart]).stream().pipeThrough(new CompressionStream("gzip"));
  return (await new Response(s).arrayBuffer()).byteLength;
}

// The ORT binary is the same in every build: gzip it once per process.
const gzipMemo = new Map<string, number>();

/** Sizes of `files` under `dir`. */
export async function artifacts(dir: string, files: string[]): Promise<Artifact[]> {
  const out: Artifact[] = [];
  for (const f of files) {
    const bytes = await Deno.readFile(join(dir, f));
    const memo = f.endsWith(ORT_WASM) ? `${ORT_VERSION}:${bytes.length}` : null;
    const gz = (memo ? gzipMemo.get(memo) : undefined) ?? await gzipSize(bytes);
    if (memo) gzipMemo.set(memo, gz);
    out.push({ file: f, bytes: bytes.length, gzipBytes: gz });
  }
  return out;
}

/** What `/healthz` reports about the build. */
export function buildInfo(
  target: BuildInfo["target"],
  models: PreparedModel[],
  ships: "graph" | "bundle" = "graph",
  detector?: PreparedDetector,
): BuildInfo {
  return {
    ...(detector
      ? {
        detector: {
          file: `models/${detector.file}`,
          name: detector.name,
          sha256: detector.sha256,
          bytes: detector.onnx.length,
        },
      }
      : {}),
    target,
    builtAt: new Date().toISOString(),
    models: models.map((m) => ({
      file: `models/${m.file}`,
      name: m.entry.name,
      task: m.entry.task,
      dtype: m.dtype,
      sha256: m.sha256,
      bytes: ships === "graph" ? m.onnx.length : m.bundle.length,
    })),
  };
}

/**
 * Isolate memory (JS heap + wasm memory) with every model loaded: ~30 MiB without weights (ORT's
 * 16 MiB initial wasm heap + ~14 MiB JS heap, measured in workerd), plus per model the bundle and its
 * float32 weights three times (dequantised tensors, the graph while ORT parses it, ORT's
 * initializers). Conservative; `deno task bench:edge` prints the measured figure.
 */
export function estimateMemory(
  models: { f32Bytes: number; bundle: Uint8Array }[],
  detector?: PreparedDetector,
): number {
  return 30 * 2 ** 20 + models.reduce((s, m) => s + 3 * m.f32Bytes + m.bundle.length, 0) +
    (detector ? detectorMemory(detector) : 0);
}

/**
 * The detector's share: its float32 graph three times (the Data module / file bytes, ORT's parse,
 * its initializers) plus ~10 MiB for a 256² run (input, feature maps, heads) and the window
 * resampler's buffers. An estimate like the rest; `/healthz` → `wasmMemoryBytes` is the measurement.
 */
export function detectorMemory(d: PreparedDetector): number {
  return 3 * d.onnx.length + 10 * 2 ** 20;
}

/** Assemble a target report. */
export function report(
  target: TargetReport["target"],
  dir: string,
  arts: Artifact[],
  checks: Check[],
  build: BuildInfo,
  models: PreparedModel[],
): TargetReport {
  return {
    models: models.map((m) => ({ file: `models/${m.file}`, entry: m.entry })),
    target,
    dir,
    artifacts: arts,
    totalBytes: arts.reduce((s, a) => s + a.bytes, 0),
    totalGzipBytes: arts.reduce((s, a) => s + a.gzipBytes, 0),
    checks,
    build,
  };
}

/** Format a target report as the table the build prints. */
export function formatReport(r: TargetReport): string {
  const w = Math.max(40, ...r.artifacts.map((a) => a.file.length + 2));
  const rows = r.artifacts.map((a) =>
    `  ${a.file.padEnd(w)} ${fmtBytes(a.bytes).padStart(11)} ${fmtBytes(a.gzipBytes).padStart(11)}`
  );
  const lines = [
    `${r.target}: ${relative(Deno.cwd(), r.dir) || "."}/`,
    `  ${"file".padEnd(w)} ${"raw".padStart(11)} ${"gzip".padStart(11)}`,
    ...rows,
    `  ${"total".padEnd(w)} ${fmtBytes(r.totalBytes).padStart(11)} ${
      fmtBytes(r.totalGzipBytes).padStart(11)
    }`,
  ];
  for (const c of r.checks) {
    lines.push(
      `  ${c.ok ? "ok  " : c.fatal ? "FAIL" : "warn"} ${c.name}: ${fmtBytes(c.value)} of ${
        fmtBytes(c.limit)
      }`,
    );
  }
  return lines.join("\n");
}
