/**
 * Face detection over HTTP: `/v1/faces/detect`, and embed / compare / enrol / search choosing the
 * detected face when no landmarks are sent, on real photos (face-api's demo photos, from the npm
 * package) with the shipped BlazeFace detector.
 */
import assert from "node:assert/strict";
import { FaceDetector } from "../../runtime/src/face/detect.ts";
import { decodeImage, orient } from "../../runtime/src/image/mod.ts";
import { MemoryStore } from "../../runtime/src/server/store/memory.ts";
import { loadReferenceBoxes, readSamplePhoto } from "../data/face_photos.ts";
import { AUTH, call, form, serve, toJpeg, withExifOrientation } from "./api_testutil.ts";

type Box = { x: number; y: number; width: number; height: number };
type DetectedFace = { box: Box; landmarks: number[][]; score: number };
type UsedFace = DetectedFace & { index: number };

function iou(a: Box, b: Box): number {
  const ix = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const iy = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  return ix <= 0 || iy <= 0 ? 0 : (ix * iy) / (a.width * a.height + b.width * b.height - ix * iy);
}

Deno.test("api detect: /v1/faces/detect and detection by default in embed, compare, enrol, search", async (t) => {
  const detector = await FaceDetector.create(
    await Deno.readFile(new URL("../../weights/blazeface-back-256.onnx", import.meta.url)),
  );
  const srv = serve({ store: new MemoryStore(), faceDetector: detector });
  const post = (path: string, body: BodyInit, headers: Record<string, string> = {}) =>
    call(srv.url + path, { method: "POST", headers: { ...AUTH, ...headers }, body });
  const ref = await loadReferenceBoxes();
  const sample1 = await readSamplePhoto("sample1.jpg");
  const sample5 = await readSamplePhoto("sample5.jpg");
  try {
    let detected: DetectedFace[] = [];
    await t.step(
      "detect: every reference face of a group photo, boxes and 5 landmarks in image pixels",
      async () => {
        const r = await post("/v1/faces/detect", sample1 as BodyInit, { "content-type": "image/jpeg" });
        assert.equal(r.status, 200);
        assert.equal(r.body.width, 1920);
        assert.equal(r.body.height, 1280);
        detected = r.body.faces as DetectedFace[];
        for (const b of ref.photos["sample1.jpg"].faces) {
          assert.ok(detected.some((f) => iou(b, f.box) >= 0.3));
        }
        assert.ok(detected.length <= ref.photos["sample1.jpg"].faces.length + 1);
        for (let i = 0; i < detected.length; i++) {
          const f = detected[i];
          assert.equal(f.landmarks.length, 5);
          assert.ok(f.box.x + f.box.width > 0 && f.box.x < 1920 && f.box.y < 1280);
          if (i) {
            assert.ok(f.box.width * f.box.height <= detected[i - 1].box.width * detected[i - 1].box.height);
          }
        }
      },
    );

    await t.step("detect: an EXIF-rotated copy answers in upright pixels", async () => {
      const up = (await decodeImage(sample1)).pixels;
      const stored = orient(up, 8); // shown upright by orientation 6
      const jpg = withExifOrientation(toJpeg(stored.data, stored.width, stored.height, 90), 6);
      const r = await post("/v1/faces/detect", form({ image: jpg }));
      assert.equal(r.status, 200);
      assert.deepEqual([r.body.width, r.body.height], [1920, 1280]);
      const faces = r.body.faces as DetectedFace[];
      for (const b of ref.photos["sample1.jpg"].faces) assert.ok(faces.some((f) => iou(b, f.box) >= 0.3));
    });

    await t.step("embed: the largest face by default, another by index; the answer says which", async () => {
      const a = await post("/v1/faces/embed", form({ image: sample1 }));
      assert.equal(a.status, 200);
      const fa = a.body.face as UsedFace;
      assert.equal(fa.index, 0);
      // Without `face` only the whole-image windows run: one of the largest faces (two here are within
      // 5 % in size, so it may be /detect's second), its box within a few px of /detect's.
      const same = detected.find((f) => iou(fa.box, f.box) > 0.8);
      assert.ok(same && same.box.width >= 0.9 * detected[0].box.width);
      const a0 = await post("/v1/faces/embed", form({ image: sample1 }, { face: "0" }));
      assert.deepEqual((a0.body.face as UsedFace).box, detected[0].box); // an explicit index: /detect's list
      const b = await post("/v1/faces/embed", form({ image: sample1 }, { face: "2" }));
      assert.equal(b.status, 200);
      assert.deepEqual((b.body.face as UsedFace).box, detected[2].box);
      assert.notDeepEqual(a.body.embedding, b.body.embedding);
      const far = await post("/v1/faces/embed", form({ image: sample1 }, { face: "40" }));
      assert.equal(far.status, 422);
      assert.equal((far.body.error as { code: string }).code, "no_face");
    });

    await t.step("embed: client landmarks skip detection (face: null)", async () => {
      const r = await post(
        "/v1/faces/embed",
        form({ image: sample1 }, { landmarks: JSON.stringify(detected[0].landmarks) }),
      );
      assert.equal(r.status, 200);
      assert.equal(r.body.face, null);
    });

    await t.step("embed: a photo without a face → 422 no_face", async () => {
      const img = (await decodeImage(sample1)).pixels;
      const w = 380, h = 330, data = new Uint8Array(w * h * 3);
      for (let y = 0; y < h; y++) data.set(img.data.subarray(y * 1920 * 3, (y * 1920 + w) * 3), y * w * 3);
      const r = await post("/v1/faces/embed", form({ image: toJpeg(data, w, h) }));
      assert.equal(r.status, 422);
      assert.equal((r.body.error as { code: string }).code, "no_face");
      const d = await post("/v1/faces/detect", form({ image: toJpeg(data, w, h) }));
      assert.equal(d.status, 200);
      assert.deepEqual(d.body.faces, []);
    });

    await t.step("compare: one face per image, both reported", async () => {
      const r = await post(
        "/v1/faces/compare",
        form({ source: sample1, target: sample1 }, { targetFace: "1" }),
      );
      assert.equal(r.status, 200);
      assert.equal((r.body.face as UsedFace).index, 0);
      assert.equal((r.body.targetFace as UsedFace).index, 1);
      assert.ok((r.body.similarity as number) < 0.9999);
    });

    await t.step("enrol maxFaces: every face of a group photo, then search finds them", async () => {
      assert.equal(
        (await call(srv.url + "/v1/collections/group", { method: "PUT", headers: AUTH })).status,
        201,
      );
      const r = await post(
        "/v1/collections/group/faces",
        form({ image: sample5 }, { maxFaces: "10", externalId: "g" }),
      );
      assert.equal(r.status, 201);
      const faces = r.body.faces as { faceId: string; face: UsedFace }[];
      assert.ok(faces.length >= ref.photos["sample5.jpg"].faces.length);
      assert.equal(new Set(faces.map((f) => f.faceId)).size, faces.length);
      assert.equal(r.body.faceId, faces[0].faceId);
      const list = await call(srv.url + "/v1/collections/group/faces", { headers: AUTH });
      assert.equal((list.body.faces as unknown[]).length, faces.length);
      const s = await post("/v1/collections/group/search", form({ image: sample5 }, { face: "1", k: "1" }));
      assert.equal(s.status, 200);
      assert.equal((s.body.face as UsedFace).index, 1);
      assert.equal((s.body.matches as { faceId: string }[])[0].faceId, faces[1].faceId);
      const bad = await post(
        "/v1/collections/group/faces",
        form({ image: sample5 }, { maxFaces: "3", landmarks: JSON.stringify(detected[0].landmarks) }),
      );
      assert.equal(bad.status, 400);
    });

    await t.step("OpenAPI lists /v1/faces/detect and the no_face code", async () => {
      const doc = await (await fetch(srv.url + "/openapi.json")).json();
      assert.ok(doc.paths["/v1/faces/detect"]?.post);
      assert.ok(JSON.stringify(doc).includes("no_face"));
    });
  } finally {
    await srv.close();
    await detector.dispose();
  }
});

Deno.test("api detect: a server without a detector answers /v1/faces/detect with not_found", async () => {
  const srv = serve({ store: new MemoryStore() });
  try {
    const r = await call(srv.url + "/v1/faces/detect", {
      method: "POST",
      headers: AUTH,
      body: form({ image: await readSamplePhoto("sample1.jpg") }),
    });
    assert.equal(r.status, 404);
    assert.equal((r.body.error as { code: string }).code, "not_found");
  } finally {
    await srv.close();
  }
});
