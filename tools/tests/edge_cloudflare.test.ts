/**
 * The Workers bundle for real: `deno task build --target cloudflare`, D1 migrations applied with
 * wrangler, then `wrangler dev` (workerd + local D1) on 127.0.0.1, driven over HTTP; embeddings must
 * equal `deno task serve`'s default model (int8, in process) within 1e-4.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildEdge } from "../build/mod.ts";
import { answered, applyMigrations, startWrangler } from "../build/edge_run.ts";
import {
  EDGE_KEY,
  edgeTestModels,
  exerciseApi,
  inProcessEmbeddings,
  maxAbsDiff,
  testImages,
} from "./edge_testutil.ts";

Deno.test({
  name:
    "edge cloudflare: wrangler dev on dist/cloudflare serves embed + D1 collections like the in-process app",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const tmp = await Deno.makeTempDir({ prefix: "edge-cf-" });
    try {
      const { models } = await edgeTestModels(tmp);
      const [report] = await buildEdge({
        models,
        targets: ["cloudflare"],
        outDir: join(tmp, "dist"),
        quiet: true,
      });
      const dist = join(tmp, "dist", "cloudflare");
      const face = report.build.models.find((m) => m.task === "face")!;
      assert.equal(face.dtype, "int8", "every target ships the int8 face bundle by default");
      const images = testImages(3);
      // What `deno task serve` serves by default (same manifest choice, same dtype, ORT wasm).
      const expected = await inProcessEmbeddings(models.find((m) => m.entry.task === "face")!, images);

      const state = join(tmp, "state");
      await t.step("wrangler d1 migrations apply + wrangler dev: embed, enrol, search", async () => {
        await applyMigrations(dist, state);
        const s = startWrangler(dist, { apiKey: EDGE_KEY, stateDir: state });
        try {
          await answered(s, "/healthz", 180_000);
          const { embeddings, health } = await exerciseApi(s.url, images, {
            store: "d1",
            classifier: report.build.models.some((m) => m.task === "classifier"),
          });
          const edge = health.edge as { target: string; build: { models: { sha256: string }[] } };
          assert.equal(edge.target, "cloudflare");
          assert.equal(edge.build.models[0].sha256, face.sha256);
          const d = maxAbsDiff(embeddings, expected);
          assert.ok(d <= 1e-4, `workers edge vs in-process: max |Δ| = ${d}`);
        } catch (e) {
          console.error(s.output().slice(-3000));
          throw e;
        } finally {
          await s.stop();
        }
      });

      await t.step("missing ORT wasm module → wrangler dev fails at startup naming it", async () => {
        await Deno.remove(join(dist, "worker", "ort-wasm-simd-threaded.wasm"));
        const s = startWrangler(dist, { apiKey: EDGE_KEY, stateDir: state });
        try {
          await assert.rejects(
            answered(s, "/healthz", 120_000),
            /No such module "ort-wasm-simd-threaded\.wasm"/,
          );
        } finally {
          await s.stop();
        }
      });
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
