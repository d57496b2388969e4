/**
 * The Deno edge bundle for real: `deno task build --target deno`, then `deno serve dist/deno/server.mjs`
 * (the documented command) on 127.0.0.1, driven over HTTP; embeddings must equal those of `deno task
 * serve`'s default model (in process) within 1e-4. edge_cloudflare.test.ts checks the same for
 * Workers: the three targets agree by default.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildEdge } from "../build/mod.ts";
import { answered, startDeno } from "../build/edge_run.ts";
import {
  EDGE_KEY,
  edgeTestModels,
  exerciseApi,
  inProcessEmbeddings,
  maxAbsDiff,
  testImages,
} from "./edge_testutil.ts";

Deno.test({
  name: "edge deno: deno serve dist/deno/server.mjs serves embed + collections like the in-process app",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "edge-deno-" });
    try {
      const { models } = await edgeTestModels(tmp);
      const [report] = await buildEdge({ models, targets: ["deno"], outDir: join(tmp, "dist"), quiet: true });
      const dist = join(tmp, "dist", "deno");
      for (const f of ["server.mjs", "ort-wasm-simd-threaded.wasm"]) await Deno.stat(join(dist, f));
      const face = report.build.models.find((m) => m.task === "face")!;
      const images = testImages(3);
      // What `deno task serve` serves by default (same manifest choice, same dtype, ORT wasm).
      const expected = await inProcessEmbeddings(models.find((m) => m.entry.task === "face")!, images);

      const data = join(tmp, "data");
      await Deno.mkdir(data);
      const s = startDeno(dist, { apiKey: EDGE_KEY, dataDir: data });
      try {
        await answered(s);
        const { embeddings, health } = await exerciseApi(s.url, images, {
          store: "deno-kv",
          classifier: report.build.models.some((m) => m.task === "classifier"),
        });
        const edge = health.edge as { target: string; build: { models: { sha256: string }[] } };
        assert.equal(edge.target, "deno");
        assert.equal(edge.build.models[0].sha256, face.sha256);
        const d = maxAbsDiff(embeddings, expected);
        assert.ok(d <= 1e-4, `deno edge vs in-process: max |Δ| = ${d}`);
      } finally {
        await s.stop();
      }

      // BACKEND=native: onnxruntime-node where the addon loads (same graph, MLAS kernels); without
      // --allow-ffi it cannot load and the server says so and runs on wasm.
      for (const allowFfi of [true, false]) {
        const n = startDeno(dist, { apiKey: EDGE_KEY, dataDir: data, env: { BACKEND: "native" }, allowFfi });
        try {
          await answered(n);
          const { embeddings } = await exerciseApi(n.url, images, { store: "deno-kv" });
          // After the embeds the engine has loaded (before, /healthz shows the requested backend).
          const health = await (await fetch(`${n.url}/healthz`)).json();
          const backend = (health.edge as { backend: string }).backend;
          assert.equal(backend, allowFfi ? "native" : "wasm", n.output());
          if (!allowFfi) {
            assert.match(n.output(), /BACKEND=native: falling back to wasm: onnxruntime-node could not load/);
          }
          const d = maxAbsDiff(embeddings, expected);
          assert.ok(d <= 1e-4, `deno edge (BACKEND=native, allow-ffi ${allowFfi}) vs serve: max |Δ| = ${d}`);
        } finally {
          await n.stop();
        }
      }

      // main.mjs: the same server for hosts that `deno run` an entrypoint.
      const r = startDeno(dist, { apiKey: EDGE_KEY, dataDir: data, entry: "run" });
      try {
        const h = await answered(r);
        assert.equal(h.status, 200);
      } finally {
        await r.stop();
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
