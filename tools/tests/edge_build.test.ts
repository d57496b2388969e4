/**
 * `deno task build` output and the edge failure modes: layout and wrangler config, int8 on Workers,
 * limits, and clear errors for a missing model, an oversized build, a missing D1 binding / API key /
 * compiled wasm (Workers entry, in process) and a missing wasm asset (deno serve, for real).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildEdge, formatReport, PLACEHOLDER_D1_ID } from "../build/mod.ts";
import { answered, startDeno } from "../build/edge_run.ts";
import { readBundle, writeBundle } from "../../runtime/src/io/bundle.ts";
import { loadBundle } from "../../runtime/src/deploy_model.ts";
import { buildOnnx } from "../../runtime/src/onnx/graph.ts";
import { servedModelInfo } from "../../runtime/src/server/model_info.ts";
import { ORT_NODE_SPECIFIER } from "../../runtime/src/backends/ort_node.ts";
import { ConfigError, parseConfig } from "../../runtime/adapter/config.ts";
import { graphOfBundle } from "../../runtime/adapter/graph.ts";
import type { RepmlpError } from "../../runtime/src/errors.ts";
import { createWorker, type WorkerAssets } from "../../runtime/adapter/cloudflare/worker.ts";
import { appOptionsFromEnv, EdgeConfigError } from "../../runtime/adapter/shared.ts";
import { EDGE_KEY, tinyFaceBundle } from "./edge_testutil.ts";

const face = { name: "tiny-face", task: "face" as const };

async function withBuild(fn: (dir: string, bundle: string) => Promise<void>) {
  const tmp = await Deno.makeTempDir({ prefix: "edge-build-" });
  try {
    const bundle = join(tmp, "tiny-face.safetensors");
    await Deno.writeFile(bundle, await tinyFaceBundle());
    await fn(tmp, bundle);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** wrangler.jsonc is JSON after its leading `//` comment lines. */
function parseJsonc(text: string): Record<string, unknown> {
  return JSON.parse(text.split("\n").filter((l) => !l.startsWith("//")).join("\n"));
}

Deno.test("edge build: both targets, layout, wrangler config, one int8 model and graph on both, size report", async () => {
  await withBuild(async (tmp, bundle) => {
    const out = join(tmp, "dist");
    const reports = await buildEdge({ models: [{ entry: face, path: bundle }], outDir: out, quiet: true });
    assert.deepEqual(reports.map((r) => r.target), ["deno", "cloudflare"]);
    const [deno, cf] = reports;

    // Deno: entry + ORT wasm + the model's ONNX graph, built from its int8 re-encoding (default dtype).
    assert.deepEqual(deno.artifacts.map((a) => a.file), [
      "server.mjs",
      "main.mjs",
      "ort-wasm-simd-threaded.wasm",
      "models/tiny-face.int8.onnx",
    ]);
    assert.equal(deno.build.models[0].dtype, "int8");
    // Workers: modules under worker/, the same int8 bundle, built into the same graph on first use.
    assert.deepEqual(cf.artifacts.map((a) => a.file), [
      "worker/worker.mjs",
      "worker/ort-wasm-simd-threaded.wasm",
      "worker/models/tiny-face.int8.safetensors",
    ]);
    const graphDeno = await Deno.readFile(join(out, "deno", "models/tiny-face.int8.onnx"));
    const cfBundle = await Deno.readFile(join(out, "cloudflare", "worker/models/tiny-face.int8.safetensors"));
    assert.equal(cf.build.models[0].sha256, deno.build.models[0].sha256);
    assert.equal(cf.build.models[0].dtype, "int8");
    const info0 = servedModelInfo(await loadBundle(cfBundle), face);
    assert.deepEqual(new Uint8Array(await graphOfBundle(cfBundle, info0.inputSize)), graphDeno);

    // The graph is exactly what createSession builds at load from the int8 bundle (deno task serve).
    const src = await readBundle(await Deno.readFile(bundle));
    const int8 = await loadBundle(
      await writeBundle({ model: src.model, tensors: src.tensors, dtype: "int8", meta: src.meta }),
    );
    assert.equal(deno.build.models[0].sha256, int8.sha256);
    const info = servedModelInfo(int8, face);
    const g = buildOnnx(int8.desc, int8.tensors, {
      inputHW: [info.inputSize[1], info.inputSize[2]],
      precision: "fp32",
      fc3: "matmul",
    });
    assert.deepEqual(graphDeno, new Uint8Array(g.bytes));
    // …and the served-model info is recorded in the entry for the runtime.
    assert.ok((await Deno.readTextFile(join(out, "deno", "server.mjs"))).includes(JSON.stringify(info.name)));

    const cfg = parseJsonc(await Deno.readTextFile(join(out, "cloudflare", "wrangler.jsonc")));
    assert.equal(cfg.main, "worker/worker.mjs");
    assert.equal(cfg.no_bundle, true);
    assert.deepEqual(
      (cfg.rules as { type: string; globs: string[] }[]).map((r) => [r.type, r.globs[0]]),
      [["CompiledWasm", "**/*.wasm"], ["Data", "**/*.safetensors"]],
    );
    const d1 = (cfg.d1_databases as Record<string, string>[])[0];
    assert.equal(d1.binding, "DB");
    assert.equal(d1.database_id, PLACEHOLDER_D1_ID);
    assert.equal(d1.migrations_dir, "migrations");
    const migrations = [...Deno.readDirSync(join(out, "cloudflare", "migrations"))].map((e) => e.name);
    assert.ok(migrations.includes("0001_init.sql"), `migrations: ${migrations}`);

    // Sizes: gzip below raw, every Workers check evaluated and passing the hard ones.
    for (const r of reports) {
      for (const a of r.artifacts) assert.ok(a.gzipBytes > 0 && a.gzipBytes <= a.bytes + 64);
    }
    assert.ok(cf.checks.filter((c) => c.fatal).every((c) => c.ok));
    assert.match(formatReport(cf), /Worker size \(all plans, 2026\)/);

    // A build flag overrides the dtype: fp32 keeps the bundle's own weights.
    const [fp32] = await buildEdge({
      models: [{ entry: face, path: bundle }],
      targets: ["deno"],
      dtype: "fp32",
      outDir: join(tmp, "fp32"),
      quiet: true,
    });
    assert.equal(fp32.build.models[0].dtype, "fp32");
    assert.equal(fp32.build.models[0].sha256, src.sha256);
  });
});

Deno.test("edge build: --inline puts ORT wasm and the graphs into server.mjs", async () => {
  await withBuild(async (tmp, bundle) => {
    const [r] = await buildEdge({
      models: [{ entry: face, path: bundle }],
      targets: ["deno"],
      inline: true,
      outDir: join(tmp, "dist"),
      quiet: true,
    });
    assert.deepEqual(r.artifacts.map((a) => a.file), ["server.mjs", "main.mjs"]);
    assert.ok(r.artifacts[0].bytes > 13 * 2 ** 20, "the 13.6 MiB ORT wasm is inside");
  });
});

Deno.test("edge build: refuses a missing face model and a build over the Workers limits", async () => {
  await withBuild(async (tmp, bundle) => {
    await assert.rejects(
      buildEdge({ models: [], outDir: join(tmp, "d0"), quiet: true }),
      (e: RepmlpError) => e.code === "invalid_argument" && /no face model/.test(e.message),
    );
    await assert.rejects(
      buildEdge({
        models: [{ entry: face, path: bundle }],
        targets: ["cloudflare"],
        outDir: join(tmp, "d1"),
        quiet: true,
        limits: { sizeBytes: 10 * 2 ** 20 },
      }),
      (e: RepmlpError) =>
        /cloudflare build is too large: Worker size/.test(e.message) && /smaller model/.test(e.hint ?? ""),
    );
    await assert.rejects(
      buildEdge({
        models: [{ entry: face, path: bundle }],
        targets: ["cloudflare"],
        outDir: join(tmp, "d2"),
        quiet: true,
        limits: { memoryBytes: 20 * 2 ** 20 },
      }),
      (e: RepmlpError) => /isolate memory/.test(e.message),
    );
  });
});

Deno.test("edge worker: missing D1 binding, API key or compiled wasm → 500 misconfigured naming the fix", async () => {
  const assets: WorkerAssets = {
    ortWasm: new WebAssembly.Module(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0])),
    models: [],
    build: { target: "cloudflare", builtAt: "", models: [] },
  };
  const db = { prepare: () => ({}) as never, batch: () => Promise.resolve([]) };
  const call = async (w: ReturnType<typeof createWorker>, env: Record<string, unknown>) => {
    const r = await w.fetch(new Request("http://edge/healthz"), env);
    return { status: r.status, body: await r.json() as { error: { code: string; message: string } } };
  };
  const w = createWorker(assets);
  const noDb = await call(w, { API_KEYS: EDGE_KEY });
  assert.equal(noDb.status, 500);
  assert.equal(noDb.body.error.code, "misconfigured");
  assert.match(noDb.body.error.message, /D1 binding 'DB' is missing.*d1_databases/);
  const noKey = await call(w, { DB: db });
  assert.equal(noKey.status, 500);
  assert.match(noKey.body.error.message, /API_KEYS is not set.*wrangler secret put API_KEYS/);
  const notCompiled = await call(createWorker({ ...assets, ortWasm: new ArrayBuffer(8) as never }), {
    DB: db,
    API_KEYS: EDGE_KEY,
  });
  assert.equal(notCompiled.status, 500);
  assert.match(notCompiled.body.error.message, /not a compiled WebAssembly module.*CompiledWasm/);
});

Deno.test({
  name: "edge deno: missing ORT wasm, no API_KEYS, no --unstable-kv → 500 misconfigured naming the fix",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withBuild(async (tmp, bundle) => {
      const out = join(tmp, "dist");
      await buildEdge({
        models: [{ entry: face, path: bundle }],
        targets: ["deno"],
        outDir: out,
        quiet: true,
      });
      await Deno.remove(join(out, "deno", "ort-wasm-simd-threaded.wasm"));
      const data = join(tmp, "data");
      await Deno.mkdir(data);
      const cases = [
        [EDGE_KEY, true, /ort-wasm-simd-threaded\.wasm not found/],
        ["", true, /API_KEYS is not set/],
        [EDGE_KEY, false, /Deno KV is unavailable: run deno serve with --unstable-kv/],
      ] as const;
      for (const [key, unstableKv, re] of cases) {
        const s = startDeno(join(out, "deno"), { apiKey: key, dataDir: data, unstableKv });
        try {
          const r = await answered(s, "/healthz");
          const r2 = await fetch(`${s.url}/healthz`);
          const b = await r2.json();
          assert.equal(r.status, 500);
          assert.equal(b.error.code, "misconfigured");
          assert.match(b.error.message, re);
        } finally {
          await s.stop();
        }
      }
    });
  },
});

Deno.test("edge env: RATE_LIMIT_RPM, CORS_ORIGINS, MAX_BODY_BYTES, MAX_PIXELS as for deno task serve", () => {
  const env = (vars: Record<string, string>) => (k: string) => vars[k];
  const d = appOptionsFromEnv(env({}));
  assert.deepEqual(d.rateLimit, { requestsPerMinute: 600, burst: 100 });
  assert.equal(d.cors, undefined);
  assert.equal(d.maxBodyBytes, 5 * 2 ** 20);
  assert.equal(d.maxPixels, 40_000_000);
  const o = appOptionsFromEnv(
    env({ RATE_LIMIT_RPM: "0", CORS_ORIGINS: "https://a.example, https://b.example" }),
  );
  assert.equal(o.rateLimit, false);
  assert.deepEqual(o.cors, { origins: ["https://a.example", "https://b.example"] });
  assert.throws(() => appOptionsFromEnv(env({ MAX_BODY_BYTES: "lots" })), EdgeConfigError);
});

Deno.test("config: one parser for serve and the edge entries; bad values name the variable", () => {
  const env = (vars: Record<string, string>) => (k: string) => vars[k];
  const d = parseConfig(env({}));
  assert.equal(d.backend, "auto");
  assert.equal(d.dtype, "int8");
  assert.equal(d.port, 8000);
  assert.equal(d.host, "127.0.0.1");
  assert.deepEqual(d.apiKeys, []);
  assert.equal(parseConfig(env({}), { backend: "wasm" }).backend, "wasm");
  const c = parseConfig(
    env({ API_KEYS: " a1234567 , ,b1234567", BACKEND: "native", DTYPE: "fp32", PORT: "0" }),
  );
  assert.deepEqual(c.apiKeys, ["a1234567", "b1234567"]);
  assert.equal(c.backend, "native");
  assert.equal(c.dtype, "fp32");
  assert.equal(c.port, 0);
  for (
    const [k, v, re] of [
      ["BACKEND", "gpu", /BACKEND must be one of auto, webgpu, wasm, native, reference, got 'gpu'/],
      ["DTYPE", "int4", /DTYPE must be one of int8, fp16, fp32, keep/],
      ["PORT", "-1", /PORT must be a non-negative integer/],
      ["MAX_PIXELS", "1e3.5", /MAX_PIXELS/],
      ["RATE_LIMIT_RPM", "ten", /RATE_LIMIT_RPM/],
    ] as const
  ) {
    assert.throws(
      () => parseConfig(env({ [k]: v })),
      (e: Error) => e instanceof ConfigError && re.test(e.message),
    );
  }
});

Deno.test("native backend: onnxruntime-node pin equals tools/deno.json's and stays out of the runtime import map", async () => {
  const tools = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const runtime = JSON.parse(await Deno.readTextFile(new URL("../../runtime/deno.json", import.meta.url)));
  assert.equal(ORT_NODE_SPECIFIER, tools.imports["onnxruntime-node"]);
  assert.ok(!Object.values(runtime.imports).some((v) => String(v).includes("onnxruntime-node")));
  // No statically analysable import of it in the runtime package (Deno would install it for serve).
  const src = await Deno.readTextFile(new URL("../../runtime/src/backends/ort_node.ts", import.meta.url));
  assert.doesNotMatch(src, /import\(\s*["'`](npm:)?onnxruntime-node/);
  assert.doesNotMatch(src, /from\s+["'](npm:)?onnxruntime-node/);
});
