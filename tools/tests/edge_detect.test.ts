/**
 * Face detection in both edge builds: `deno task build` with the manifest's detector, then `deno serve
 * dist/deno/server.mjs` and `wrangler dev` on dist/cloudflare answer `POST /v1/faces/detect` on a real
 * group photo with the boxes `deno task serve`'s code finds in process (within a pixel), and embed a
 * photo by its largest face. The build report counts the detector.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { FaceDetector, findFaces } from "../../runtime/src/face/detect.ts";
import { faceJson } from "../../runtime/src/server/face_select.ts";
import { openImage } from "../../runtime/src/image/mod.ts";
import { chooseDetector, readManifest } from "../../runtime/src/server/manifest.ts";
import { buildEdge } from "../build/mod.ts";
import { answered, applyMigrations, startDeno, startWrangler } from "../build/edge_run.ts";
import { readSamplePhoto } from "../data/face_photos.ts";
import { DEFAULT_MANIFEST, EDGE_KEY, edgeTestModels } from "./edge_testutil.ts";

type Box = { x: number; y: number; width: number; height: number };
const AUTH = { Authorization: `Bearer ${EDGE_KEY}` };

async function detectOver(url: string, photo: Uint8Array): Promise<{ box: Box }[]> {
  const r = await fetch(`${url}/v1/faces/detect`, {
    method: "POST",
    headers: { ...AUTH, "Content-Type": "image/jpeg" },
    body: photo as BodyInit,
  });
  const b = await r.json();
  assert.equal(r.status, 200, JSON.stringify(b));
  return b.faces;
}

function assertSameBoxes(got: { box: Box }[], want: { box: Box }[], where: string) {
  assert.equal(got.length, want.length, `${where}: ${got.length} faces vs ${want.length}`);
  for (let i = 0; i < want.length; i++) {
    for (const k of ["x", "y", "width", "height"] as const) {
      assert.ok(Math.abs(got[i].box[k] - want[i].box[k]) <= 1, `${where}: face ${i} ${k}`);
    }
  }
}

Deno.test({
  name: "edge detect: both builds serve /v1/faces/detect with deno task serve's boxes",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const tmp = await Deno.makeTempDir({ prefix: "edge-detect-" });
    try {
      const det = chooseDetector(await readManifest(DEFAULT_MANIFEST), DEFAULT_MANIFEST)!;
      assert.ok(det, "weights/manifest.json lists a detector");
      const { models } = await edgeTestModels(tmp);
      const reports = await buildEdge({
        models,
        detector: { path: det.path, name: det.entry?.name },
        outDir: join(tmp, "dist"),
        quiet: true,
      });
      for (const r of reports) {
        assert.ok(r.artifacts.some((a) => a.file.endsWith("models/blazeface-back-256.onnx")), r.target);
        assert.equal(r.build.detector?.sha256, det.entry?.sha256, r.target);
      }
      const cfMem = reports.find((r) => r.target === "cloudflare")!.checks.find((c) =>
        c.name.includes("memory")
      )!;
      assert.ok(cfMem.ok, `isolate memory estimate with the detector: ${cfMem.value}`);

      const photo = await readSamplePhoto("sample1.jpg");
      // In process, as deno task serve's /v1/faces/detect (wasm, one thread).
      const d = await FaceDetector.create(await Deno.readFile(det.path));
      const want = (await findFaces(d, await openImage(photo), { all: true })).faces.map(faceJson);
      await d.dispose();
      assert.ok(want.length >= 3);

      await t.step("deno serve dist/deno/server.mjs", async () => {
        const data = join(tmp, "data");
        await Deno.mkdir(data);
        const s = startDeno(join(tmp, "dist", "deno"), { apiKey: EDGE_KEY, dataDir: data });
        try {
          await answered(s);
          assertSameBoxes(await detectOver(s.url, photo), want, "deno edge");
          const e = await fetch(`${s.url}/v1/faces/embed`, {
            method: "POST",
            headers: { ...AUTH, "Content-Type": "image/jpeg" },
            body: photo as BodyInit,
          });
          const eb = await e.json();
          assert.equal(e.status, 200, JSON.stringify(eb));
          assert.ok(eb.face && eb.face.index === 0);
        } catch (e) {
          console.error(s.output().slice(-3000));
          throw e;
        } finally {
          await s.stop();
        }
      });

      await t.step("wrangler dev on dist/cloudflare", async () => {
        const dist = join(tmp, "dist", "cloudflare"), state = join(tmp, "state");
        await applyMigrations(dist, state);
        const s = startWrangler(dist, { apiKey: EDGE_KEY, stateDir: state });
        try {
          await answered(s, "/healthz", 180_000);
          assertSameBoxes(await detectOver(s.url, photo), want, "workers edge");
        } catch (e) {
          console.error(s.output().slice(-3000));
          throw e;
        } finally {
          await s.stop();
        }
      });
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
