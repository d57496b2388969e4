/**
 * `deno task build`: bundle the face API for the edge with esbuild.
 *
 *  - `dist/deno/`: `server.mjs` for `deno serve` / Deno Deploy, with `ort-wasm-simd-threaded.wasm` and
 *    the weight bundles beside it (or inlined with `--inline`).
 *  - `dist/cloudflare/`: a module worker (`worker.mjs`), the ORT binary as a CompiledWasm module, the
 *    weights as Data modules, `wrangler.jsonc` (D1 binding `DB`) and `migrations/`.
 *
 * Prints each artifact raw and gzip against the platform limits and fails when a target cannot fit.
 */
import * as esbuild from "esbuild";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import { type BundleDType, readBundle, SCALE_SUFFIX, writeBundle } from "../../runtime/src/io/bundle.ts";
import type { BuildInfo, ModelAsset } from "../../runtime/adapter/shared.ts";
import {
  type ManifestEntry,
  parseManifest,
  pickDefault,
  type WeightsManifest,
} from "../../runtime/src/server/bundles.ts";
import { parseArgs } from "node:util";
import { fail, fmtBytes, main } from "../cli/_cli.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const ORT_VERSION = "1.30.0";
const ORT_WASM = "ort-wasm-simd-threaded.wasm";

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

/** A weight bundle to ship. */
export interface ModelSpec {
  /** Name, task and overrides as in weights/manifest.json. */
  entry: ModelAsset["entry"];
  /** Path of the bundle. */
  path: string;
  /** Same model stored in another dtype (from the manifest), used when a target wants that dtype. */
  variants?: { dtype: string; path: string; entry: ModelAsset["entry"] }[];
}

/** `weights/manifest.json` of the repository. */
export const DEFAULT_MANIFEST = join(ROOT, "weights", "manifest.json");

function entryOf(e: ManifestEntry): ModelSpec["entry"] {
  const out: ModelSpec["entry"] = { name: e.name, task: e.task };
  if (e.threshold !== undefined) out.threshold = e.threshold;
  if (e.labels !== undefined) out.labels = e.labels;
  if (e.metrics !== undefined) out.metrics = e.metrics;
  return out;
}

const stem = (f: string) =>
  f.split("/").pop()!.replace(/\.safetensors$|\.bundle$/, "").replace(/[._-](fp32|fp16|int8)$/, "");

/**
 * The models `deno task serve` serves by default: the manifest's default face and classifier bundles.
 * Other-dtype entries of the same model (same name or file stem) become variants.
 */
export function modelsFromManifest(manifest: WeightsManifest, manifestPath: string): ModelSpec[] {
  const dir = dirname(manifestPath);
  const out: ModelSpec[] = [];
  for (const task of ["face", "classifier"] as const) {
    const d = pickDefault(manifest, task);
    if (!d) continue;
    const variants = manifest.bundles
      .filter((b) => b !== d && b.task === task && (b.name === d.name || stem(b.file) === stem(d.file)))
      .map((b) => ({ dtype: b.dtype, path: resolve(dir, b.file), entry: entryOf(b) }));
    out.push({ entry: entryOf(d), path: resolve(dir, d.file), variants });
  }
  return out;
}

/** A bundle given by path: its manifest entry (name, threshold, labels …) when the manifest lists it. */
export function modelSpecFor(
  path: string,
  task: "face" | "classifier",
  manifest: WeightsManifest | null,
  manifestPath = DEFAULT_MANIFEST,
): ModelSpec {
  const e = manifest?.bundles.find((b) => resolve(dirname(manifestPath), b.file) === resolve(path));
  return { entry: e ? entryOf(e) : { name: stem(path), task }, path: resolve(path) };
}

/** Read and validate a manifest; null when the file does not exist. */
export async function readManifest(path = DEFAULT_MANIFEST): Promise<WeightsManifest | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  return parseManifest(JSON.parse(text), path);
}

/** Options of {@link buildEdge}. */
export interface BuildOptions {
  /** Output root (default `dist`). */
  outDir?: string;
  targets?: ("deno" | "cloudflare")[];
  /** Bundles for the Deno target (same as `deno task serve`). */
  models: ModelSpec[];
  /**
   * dtype of the bundles shipped to Workers (default int8: the manifest's variant of that dtype, else
   * re-encoded from the weights at build time). `"keep"` ships them as they are.
   */
  workersDtype?: BundleDType | "keep";
  /**
   * How int8 bundles run on both targets: "weights" (default; dequantised at load, float32 compute,
   * same numbers as `deno task serve`) or "dynamic" (int8 MatMulInteger: less wasm memory).
   */
  int8?: "weights" | "dynamic";
  /** Inline ORT wasm and weights into dist/deno/server.mjs instead of shipping them beside it. */
  inline?: boolean;
  /** Worker name and D1 database in wrangler.jsonc. */
  workerName?: string;
  d1DatabaseName?: string;
  d1DatabaseId?: string;
  /** Minify the JS (default true). */
  minify?: boolean;
  /** Do not print the report. */
  quiet?: boolean;
  /** Override platform limits (tests; plans with other limits). */
  limits?: Partial<typeof WORKERS_LIMITS>;
}

/** One file of a build, raw and gzip. */
export interface Artifact {
  file: string;
  bytes: number;
  gzipBytes: number;
}

/** Result of one target. */
export interface TargetReport {
  target: "deno" | "cloudflare";
  dir: string;
  artifacts: Artifact[];
  totalBytes: number;
  totalGzipBytes: number;
  /** Limit checks: name, value, limit, ok. */
  checks: { name: string; value: number; limit: number; ok: boolean; fatal: boolean }[];
  build: BuildInfo;
  /** Shipped models with the entry (name, threshold, labels …) the target serves them with. */
  models: { file: string; entry: ModelAsset["entry"] }[];
}

async function gzipSize(bytes: Uint8Array): Promise<number> {
  const s = new Blob([bytes as BlobPart]).stream().pipeThrough(new CompressionStream("gzip"));
  return (await new Response(s).arrayBuffer()).byteLength;
}

/** Absolute path of ORT's single-threaded-capable SIMD wasm binary from node_modules. */
export function ortWasmPath(): string {
  const dir = join(ROOT, "node_modules", "onnxruntime-web");
  let pkg: { version?: string };
  try {
    pkg = JSON.parse(Deno.readTextFileSync(join(dir, "package.json")));
  } catch {
    throw new InvalidArgumentError(
      "onnxruntime-web is not installed in node_modules",
      "run `deno install` in the repository root first",
    );
  }
  if (pkg.version !== ORT_VERSION) {
    throw new InvalidArgumentError(
      `node_modules has onnxruntime-web ${pkg.version}, expected ${ORT_VERSION}`,
    );
  }
  return join(dir, "dist", ORT_WASM);
}

/** The wasm-only browser build of ORT (its Emscripten glue embedded; no worker, no fetch of .mjs). */
function ortBundlePath(): string {
  return join(ROOT, "node_modules", "onnxruntime-web", "dist", "ort.wasm.bundle.min.mjs");
}

const ortPlugin: esbuild.Plugin = {
  name: "edge-ort",
  setup(b) {
    // Every ORT flavour → the wasm-only build: no WebGPU on Deno Deploy or Workers.
    b.onResolve(
      { filter: /^onnxruntime-web(\/(webgpu|wasm|all|jspi))?$/ },
      () => ({ path: ortBundlePath() }),
    );
    // The native backend is for self-hosted Deno only; it cannot load on the edge.
    b.onResolve(
      { filter: /^onnxruntime-node$/ },
      () => ({ path: "onnxruntime-node", namespace: "edge-stub" }),
    );
    b.onLoad({ filter: /.*/, namespace: "edge-stub" }, () => ({
      contents: 'throw new Error("onnxruntime-node (backend: native) is not available in edge bundles");',
      loader: "js",
    }));
  },
};

function externalAssets(exts: string[]): esbuild.Plugin {
  const re = new RegExp(`\\.(${exts.join("|")})$`);
  return {
    name: "edge-external-assets",
    setup(b) {
      b.onResolve(
        { filter: re },
        (a) => (a.path.startsWith("./") ? { path: a.path, external: true } : undefined),
      );
    },
  };
}

async function bundleJs(
  entry: string,
  outFile: string,
  conditions: string[],
  opts: { minify: boolean; external: string[]; inlineBinary?: boolean },
): Promise<void> {
  const r = await esbuild.build({
    stdin: { contents: entry, resolveDir: ROOT, sourcefile: "edge-entry.ts", loader: "ts" },
    outfile: outFile,
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    mainFields: ["module", "main"],
    conditions,
    minify: opts.minify,
    legalComments: "eof",
    logLevel: "silent",
    loader: opts.inlineBinary ? { ".wasm": "binary", ".safetensors": "binary" } : undefined,
    plugins: [ortPlugin, ...(opts.external.length ? [externalAssets(opts.external)] : [])],
  });
  for (const w of r.warnings) {
    if (!/import\.meta|webpackIgnore|empty-import-meta/.test(w.text)) console.warn(`esbuild: ${w.text}`);
  }
}

// The ORT binary is the same in every build: gzip it once per process.
const gzipMemo = new Map<string, number>();

async function artifacts(dir: string, files: string[]): Promise<Artifact[]> {
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

interface PreparedModel {
  entry: ModelSpec["entry"];
  /** File name under models/. */
  file: string;
  bytes: Uint8Array;
  dtype: BundleDType;
  sha256: string;
  /** Weight bytes once dequantised to float32 (what the wasm session holds with quant "weights"). */
  f32Bytes: number;
}

const slug = (s: string) => s.replace(/\.safetensors$/, "").replace(/[^A-Za-z0-9._-]+/g, "-");

async function prepareModels(models: ModelSpec[], dtype: BundleDType | "keep"): Promise<PreparedModel[]> {
  const out: PreparedModel[] = [];
  const used = new Set<string>();
  for (const m of models) {
    const variant = dtype !== "keep" ? m.variants?.find((v) => v.dtype === dtype) : undefined;
    let bytes: Uint8Array = await Deno.readFile(variant?.path ?? m.path);
    let b = await readBundle(bytes, { dequantize: false });
    if (dtype !== "keep" && b.dtype !== dtype) {
      // Re-encode from the dequantized weights: same model record and meta, new storage dtype.
      const full = await readBundle(bytes);
      bytes = await writeBundle({
        model: full.model,
        tensors: full.tensors,
        dtype,
        meta: full.meta,
      });
      b = await readBundle(bytes, { dequantize: false });
    }
    const file0 = `${slug(stem(m.path))}.${b.dtype}.safetensors`;
    let file = file0;
    for (let i = 2; used.has(file); i++) file = file0.replace(/\.safetensors$/, `-${i}.safetensors`);
    used.add(file);
    let f32Bytes = 0;
    for (const [k, t] of b.raw) {
      if (!k.endsWith(SCALE_SUFFIX) && t.dtype !== "int64") {
        f32Bytes += 4 * t.shape.reduce((p, q) => p * q, 1);
      }
    }
    // A manifest variant keeps its own entry (name, calibrated threshold); a re-encoding keeps the model's.
    out.push({ entry: variant?.entry ?? m.entry, file, bytes, dtype: b.dtype, sha256: b.sha256, f32Bytes });
  }
  return out;
}

function buildInfo(target: BuildInfo["target"], models: PreparedModel[]): BuildInfo {
  return {
    target,
    builtAt: new Date().toISOString(),
    models: models.map((m) => ({
      file: `models/${m.file}`,
      name: m.entry.name,
      task: m.entry.task,
      dtype: m.dtype,
      sha256: m.sha256,
      bytes: m.bytes.length,
    })),
  };
}

async function resetDir(dir: string): Promise<void> {
  await Deno.remove(dir, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
  await Deno.mkdir(join(dir, "models"), { recursive: true });
}

const importPath = (p: string) => JSON.stringify(p.replaceAll("\\", "/"));

async function buildDeno(out: string, models: PreparedModel[], o: BuildOptions): Promise<TargetReport> {
  await resetDir(out);
  const build = buildInfo("deno", models);
  const files = ["server.mjs"];
  const lines: string[] = [
    `import { createServer } from ${importPath(join(ROOT, "runtime/adapter/deno/server.ts"))};`,
  ];
  if (o.inline) {
    lines.push(`import ortWasm from ${importPath(ortWasmPath())};`);
    for (const [i, m] of models.entries()) {
      const tmp = join(out, "models", m.file);
      await Deno.writeFile(tmp, m.bytes);
      lines.push(`import m${i} from ${importPath(tmp)};`);
    }
  } else {
    await Deno.copyFile(ortWasmPath(), join(out, ORT_WASM));
    files.push(ORT_WASM);
    for (const m of models) {
      await Deno.writeFile(join(out, "models", m.file), m.bytes);
      files.push(`models/${m.file}`);
    }
  }
  const list = models.map((m, i) =>
    `{ entry: ${JSON.stringify(m.entry)}, file: ${JSON.stringify(`models/${m.file}`)}, data: ${
      o.inline ? `m${i}` : JSON.stringify(`./models/${m.file}`)
    } }`
  );
  lines.push(
    `export default createServer({ base: import.meta.url, ortWasm: ${
      o.inline ? "ortWasm" : JSON.stringify(`./${ORT_WASM}`)
    }, models: [${list.join(", ")}], build: ${JSON.stringify(build)}, int8: ${
      JSON.stringify(o.int8 ?? "weights")
    } });`,
  );
  await bundleJs(lines.join("\n"), join(out, "server.mjs"), [
    "deno",
    "worker",
    "browser",
    "import",
    "default",
  ], {
    minify: o.minify ?? true,
    external: [],
    inlineBinary: o.inline,
  });
  if (o.inline) await Deno.remove(join(out, "models"), { recursive: true });
  // For hosts that run an entrypoint with `deno run` semantics (Deno Deploy apps): serve it ourselves.
  await Deno.writeTextFile(
    join(out, "main.mjs"),
    [
      "// Generated by `deno task build`: `deno run` entry around server.mjs (which is for `deno serve`).",
      'import server from "./server.mjs";',
      'const port = Number(Deno.env.get("PORT") ?? 8000);',
      'Deno.serve({ port, hostname: Deno.env.get("HOST") ?? "0.0.0.0" }, server.fetch);',
      "",
    ].join("\n"),
  );
  files.splice(1, 0, "main.mjs");
  const arts = await artifacts(out, files);
  return report("deno", out, arts, [], build, models);
}

/** wrangler.jsonc for the built worker (JSONC: a comment header, then plain JSON). */
function wranglerConfig(o: BuildOptions): string {
  const cfg = {
    name: o.workerName ?? "repmlp-edge",
    main: "worker/worker.mjs",
    compatibility_date: "2026-11-01",
    // worker.mjs is already bundled by esbuild; wrangler attaches the files beside it as modules.
    no_bundle: true,
    find_additional_modules: true,
    rules: [
      { type: "CompiledWasm", globs: ["**/*.wasm"], fallthrough: false },
      { type: "Data", globs: ["**/*.safetensors"], fallthrough: false },
    ],
    d1_databases: [{
      binding: "DB",
      database_name: o.d1DatabaseName ?? "repmlp-gallery",
      database_id: o.d1DatabaseId ?? PLACEHOLDER_D1_ID,
      migrations_dir: "migrations",
    }],
    observability: { enabled: true },
  };
  return [
    "// Generated by `deno task build` (repmlp-edge). Before `wrangler deploy`: create the D1 database",
    "// (npx wrangler d1 create repmlp-gallery), put its id in d1_databases[0].database_id (or rebuild with",
    "// --d1-id), apply migrations/ and set the API_KEYS secret. See docs/edge.md.",
    JSON.stringify(cfg, null, 2),
    "",
  ].join("\n");
}

/** database_id written when none is given: fine for `wrangler dev`, refused by `wrangler deploy`. */
export const PLACEHOLDER_D1_ID = "00000000-0000-0000-0000-000000000000";

async function buildCloudflare(
  root: string,
  models: PreparedModel[],
  o: BuildOptions,
): Promise<TargetReport> {
  // Layout: wrangler.jsonc and migrations/ at the top, the uploaded modules under worker/ (so that
  // wrangler's module discovery does not pick up the .sql files).
  await Deno.remove(root, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
  const out = join(root, "worker");
  await resetDir(out);
  const build = buildInfo("cloudflare", models);
  await Deno.copyFile(ortWasmPath(), join(out, ORT_WASM));
  const files = ["worker.mjs", ORT_WASM];
  for (const m of models) {
    await Deno.writeFile(join(out, "models", m.file), m.bytes);
    files.push(`models/${m.file}`);
  }
  const entry = [
    `import ortWasm from "./${ORT_WASM}";`,
    ...models.map((m, i) => `import m${i} from "./models/${m.file}";`),
    `import { createWorker } from ${importPath(join(ROOT, "runtime/adapter/cloudflare/worker.ts"))};`,
    `export default createWorker({ ortWasm, models: [${
      models.map((m, i) => `{ entry: ${JSON.stringify(m.entry)}, file: "models/${m.file}", bytes: m${i} }`)
        .join(", ")
    }], build: ${JSON.stringify(build)}, int8: ${JSON.stringify(o.int8 ?? "weights")} });`,
  ].join("\n");
  await bundleJs(entry, join(out, "worker.mjs"), ["workerd", "worker", "browser", "import", "default"], {
    minify: o.minify ?? true,
    external: ["wasm", "safetensors"],
  });
  await Deno.mkdir(join(root, "migrations"));
  for await (const e of Deno.readDir(join(ROOT, "runtime/adapter/cloudflare/migrations"))) {
    if (e.isFile && e.name.endsWith(".sql")) {
      await Deno.copyFile(
        join(ROOT, "runtime/adapter/cloudflare/migrations", e.name),
        join(root, "migrations", e.name),
      );
    }
  }
  await Deno.writeTextFile(join(root, "wrangler.jsonc"), wranglerConfig(o));
  const arts = await artifacts(root, files.map((f) => `worker/${f}`));
  const total = arts.reduce((s, a) => s + a.bytes, 0);
  const gz = arts.reduce((s, a) => s + a.gzipBytes, 0);
  const L = { ...WORKERS_LIMITS, ...o.limits };
  const mem = estimateMemory(models);
  return report(
    "cloudflare",
    root,
    arts,
    [
      {
        name: "Worker size (all plans, 2026)",
        value: total,
        limit: L.sizeBytes,
        ok: total <= L.sizeBytes,
        fatal: true,
      },
      {
        name: "isolate memory (estimate)",
        value: mem,
        limit: L.memoryBytes,
        ok: mem <= L.memoryBytes,
        fatal: true,
      },
      {
        name: "legacy Paid plan, gzip",
        value: gz,
        limit: L.legacyPaidGzipBytes,
        ok: gz <= L.legacyPaidGzipBytes,
        fatal: false,
      },
      {
        name: "legacy Free plan, gzip",
        value: gz,
        limit: L.legacyFreeGzipBytes,
        ok: gz <= L.legacyFreeGzipBytes,
        fatal: false,
      },
    ],
    build,
    models,
  );
}

/**
 * Isolate memory (JS heap + wasm memory) with the models loaded: ~30 MiB without weights (ORT's 16 MiB
 * initial wasm heap + ~14 MiB JS heap, measured in workerd), plus per model its float32 weights three
 * times (dequantised tensors, the serialised ONNX graph while the session is created, ORT's
 * initializers) and the bundle itself. Conservative: for the shipped face model (+ classifier) workerd
 * measured 44.5 (65) MiB where this gives 52 (75.5) MiB (docs/edge.md).
 */
export function estimateMemory(models: { f32Bytes: number; bytes: Uint8Array }[]): number {
  return 30 * 2 ** 20 + models.reduce((s, m) => s + 3 * m.f32Bytes + m.bytes.length, 0);
}

function report(
  target: TargetReport["target"],
  dir: string,
  arts: Artifact[],
  checks: TargetReport["checks"],
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

/** Build the requested targets; throws InvalidArgumentError when a target exceeds a hard limit. */
export async function buildEdge(o: BuildOptions): Promise<TargetReport[]> {
  if (!o.models.some((m) => m.entry.task === "face")) {
    throw new InvalidArgumentError("no face model given", "pass --face <bundle.safetensors>");
  }
  const outDir = o.outDir ?? join(ROOT, "dist");
  const targets = o.targets ?? ["deno", "cloudflare"];
  const reports: TargetReport[] = [];
  try {
    for (const t of targets) {
      const models = await prepareModels(
        o.models,
        t === "cloudflare" ? (o.workersDtype ?? "int8") : "keep",
      );
      const r = t === "deno"
        ? await buildDeno(join(outDir, "deno"), models, o)
        : await buildCloudflare(join(outDir, "cloudflare"), models, o);
      if (!o.quiet) console.log(formatReport(r) + "\n");
      reports.push(r);
    }
  } finally {
    await esbuild.stop();
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
      "ship int8 bundles (--workers-dtype int8) or a smaller model",
    );
  }
  return reports;
}

const USAGE = `deno task build [options]

Bundles the face API for Deno (dist/deno) and Cloudflare Workers (dist/cloudflare).

Default models: those \`deno task serve\` serves (weights/manifest.json defaults); on Workers their
int8 variants (from the manifest, else re-encoded from the weights at build time).

  --face <bundle>        face model bundle; repeatable; first is the default
  --classifier <bundle>  classifier bundle; repeatable
  --no-classifier        ship no classifier
  --manifest <file>      weights manifest (default weights/manifest.json)
  --target <t>           deno | cloudflare | all (default all)
  --workers-dtype <d>    bundle dtype on Workers: int8 (default) | fp16 | fp32 | keep
  --int8 <mode>          int8 bundles: weights (default, dequantised at load) | dynamic (MatMulInteger)
  --inline               embed ORT wasm and weights in dist/deno/server.mjs
  --out <dir>            output root (default dist)
  --name <worker>        Worker name (default repmlp-edge)
  --d1-name <name>       D1 database name (default repmlp-gallery)
  --d1-id <uuid>         D1 database id (from \`npx wrangler d1 create\`)
  --no-minify            readable output`;

if (import.meta.main) {
  await main(async () => {
    let parsed;
    try {
      parsed = parseArgs({
        args: Deno.args,
        options: {
          face: { type: "string", multiple: true },
          classifier: { type: "string", multiple: true },
          target: { type: "string", default: "all" },
          "workers-dtype": { type: "string", default: "int8" },
          inline: { type: "boolean" },
          int8: { type: "string", default: "weights" },
          out: { type: "string" },
          name: { type: "string" },
          "d1-name": { type: "string" },
          "d1-id": { type: "string" },
          "no-minify": { type: "boolean" },
          "no-classifier": { type: "boolean" },
          manifest: { type: "string" },
          help: { type: "boolean", short: "h" },
        },
      });
    } catch (e) {
      fail(`${(e as Error).message}\n\n${USAGE}`);
    }
    const values = parsed.values;
    if (values.help) {
      console.log(USAGE);
      return;
    }
    const v = values as Record<string, string | string[] | boolean | undefined>;
    const list = (x: unknown) => (Array.isArray(x) ? x as string[] : typeof x === "string" ? [x] : []);
    const manifestPath = typeof v.manifest === "string" ? resolve(v.manifest) : DEFAULT_MANIFEST;
    const manifest = await readManifest(manifestPath);
    const fromManifest = manifest ? modelsFromManifest(manifest, manifestPath) : [];
    const given = (task: "face" | "classifier", paths: string[]): ModelSpec[] =>
      paths.map((p) => modelSpecFor(p, task, manifest, manifestPath));
    const faces = list(v.face), classifiers = list(v.classifier);
    const models: ModelSpec[] = [
      ...(faces.length ? given("face", faces) : fromManifest.filter((m) => m.entry.task === "face")),
      ...(v["no-classifier"]
        ? []
        : classifiers.length
        ? given("classifier", classifiers)
        : fromManifest.filter((m) => m.entry.task === "classifier")),
    ];
    if (!models.some((m) => m.entry.task === "face")) {
      throw new InvalidArgumentError(
        manifest ? `${manifestPath} lists no face bundle` : `${manifestPath} not found`,
        "pass --face <bundle.safetensors>",
      );
    }
    const target = String(v.target);
    if (!["all", "deno", "cloudflare"].includes(target)) {
      throw new InvalidArgumentError(`unknown --target '${target}' (deno, cloudflare, all)`);
    }
    const wd = String(v["workers-dtype"]);
    if (!["int8", "fp16", "fp32", "keep"].includes(wd)) {
      throw new InvalidArgumentError(`unknown --workers-dtype '${wd}' (int8, fp16, fp32, keep)`);
    }
    const int8 = String(v.int8);
    if (int8 !== "weights" && int8 !== "dynamic") {
      throw new InvalidArgumentError(`unknown --int8 '${int8}' (weights, dynamic)`);
    }
    await buildEdge({
      models,
      int8,
      targets: target === "all" ? ["deno", "cloudflare"] : [target as "deno" | "cloudflare"],
      workersDtype: wd as BundleDType | "keep",
      inline: Boolean(v.inline),
      outDir: typeof v.out === "string" ? v.out : undefined,
      workerName: v.name as string | undefined,
      d1DatabaseName: v["d1-name"] as string | undefined,
      d1DatabaseId: v["d1-id"] as string | undefined,
      minify: !v["no-minify"],
    });
  });
}
