// The real-face check set builds from the npm packages' photos: every label finds its detected
// face, the counts are the documented ones, and crops are written where pairs.csv points.
import assert from "node:assert/strict";
import { initBackend } from "../train/tfjs_backend.ts";
import { faceApiDetector } from "../data/faceapi_detect.ts";
import { buildRealFaces, loadLabels, pairsCsv } from "../data/realfaces.ts";
import { parseCsvPairs } from "../eval/pairs.ts";

const NM = new URL("../../node_modules/", import.meta.url).pathname;
const have = (p: string) => {
  try {
    return Deno.statSync(`${NM}${p}`).isFile;
  } catch {
    return false;
  }
};

Deno.test({
  name: "data:realfaces: 29 labelled faces, 21 genuine / 185 impostor pairs from the packages' photos",
  ignore: !have("@vladmandic/face-api/demo/sample1.jpg") ||
    !have("@vladmandic/human/assets/screenshot-facematch.jpg"),
  async fn() {
    await initBackend("wasm");
    const dir = await Deno.makeTempDir({ prefix: "repmlp-realfaces-" });
    const { faces, pairs } = await buildRealFaces(
      await loadLabels(),
      await faceApiDetector(0.3),
      dir,
      (pkg, file) => `${NM}${pkg}/${file}`,
      64,
    );
    assert.equal(faces.length, 29);
    assert.equal(new Set(faces.map((f) => f.id)).size, 23);
    assert.equal(pairs.filter((p) => p.same).length, 21);
    assert.equal(pairs.filter((p) => !p.same).length, 185);
    const parsed = parseCsvPairs(pairsCsv(pairs), dir);
    for (const p of parsed) assert.ok(Deno.statSync(p.a).size > 0 && Deno.statSync(p.b).size > 0);
    await Deno.remove(dir, { recursive: true });
  },
});
