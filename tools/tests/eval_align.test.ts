/**
 * `eval --align detect` and `distill --align detect` align with the kit's detector exactly as the
 * server does (same faces, same refined landmarks), on the model's own template; face-api's
 * detector is only the independent reference. The server's detected-face path uses the model's
 * template too. Real photos from face-api's demo folder (npm package).
 */
import assert from "node:assert/strict";
import { kitFaceFinder } from "../eval/kit_detect.ts";
import { facePixels } from "../eval/embed.ts";
import { collectFaces } from "../train/distill.ts";
import { locateFaces } from "../../runtime/src/server/face_input.ts";
import { FaceDetector } from "../../runtime/src/face/detect.ts";
import { cropPixels, normalizePixels, openImage } from "../../runtime/src/image/mod.ts";
import { embedFaces } from "../../runtime/src/server/input.ts";
import { faceModelFromForward } from "../../runtime/src/server/served_model.ts";
import { Hono } from "hono";
import { dlibChipTemplate } from "../../runtime/src/arch/faceapi.ts";
import { readSamplePhoto } from "../data/face_photos.ts";

const WEIGHTS = new URL("../../weights/blazeface-back-256.onnx", import.meta.url);
const PHOTO = "sample2.jpg";

Deno.test("eval/distill face finder = the server's faces and refined landmarks (kit detector)", async () => {
  const bytes = await readSamplePhoto(PHOTO);
  const kit = await kitFaceFinder();
  const det = await FaceDetector.create(await Deno.readFile(WEIGHTS), { backend: "wasm", threads: 1 });
  try {
    const found = await kit.find(await openImage(bytes));
    // The server's enrol-all path (/v1/faces/enrol with max_faces): every face, largest first, refined.
    const served = (await locateFaces(bytes, { maxFaces: 100 }, det, 40e6)).faces;
    assert.ok(found.length >= 2, `expected a group photo, found ${found.length} face(s)`);
    assert.equal(found.length, served.length);
    for (const [i, f] of found.entries()) {
      const s = served[i];
      assert.ok(s.face);
      // Responses round boxes to 0.1 px; the landmarks used for the crop are not rounded.
      assert.ok(Math.abs(f.box.x - s.face.box.x) <= 0.051 && Math.abs(f.box.w - s.face.box.width) <= 0.051);
      assert.deepEqual(f.landmarks, s.landmarks);
    }
  } finally {
    await kit.dispose();
    await det.dispose();
  }
});

Deno.test("eval crops and distillation teacher crops use the model's own template", async () => {
  const bytes = await readSamplePhoto(PHOTO);
  const kit = await kitFaceFinder();
  const dir = await Deno.makeTempDir({ prefix: "eval_align_" });
  try {
    const file = `${dir}/${PHOTO}`;
    await Deno.writeFile(file, bytes);
    const src = await openImage(bytes);
    const faces = await kit.find(src);
    const dlib = dlibChipTemplate(), input = [3, 150, 150] as const;
    const crop = (lm: typeof faces[0]["landmarks"], template?: typeof dlib) =>
      cropPixels(src, { input, landmarks: lm, template });

    // distill: teacher crops on the teacher's template, student crops on the default (ArcFace) one.
    const c = await collectFaces([file], [3, 64, 64], [3, 150, 150], "detect", kit.find, undefined, {
      teacher: dlib,
    });
    assert.equal(c.student.n, faces.length);
    const n = 3 * 150 * 150;
    for (const [i, f] of faces.entries()) {
      assert.deepEqual(c.teacher.subarray(i * n, (i + 1) * n), await crop(f.landmarks, dlib));
    }
    const first = await crop(faces[0].landmarks, dlib), arc = await crop(faces[0].landmarks);
    assert.notDeepEqual(
      first,
      arc,
      "the two templates must give different crops, or the test proves nothing",
    );
    assert.deepEqual(
      c.student.images.subarray(0, 3 * 64 * 64),
      await cropPixels(src, { input: [3, 64, 64], landmarks: faces[0].landmarks }),
    );

    // eval: the face nearest the centre, on the model's template.
    const { pixels, detected } = await facePixels(file, input, "detect", kit.find, dlib);
    assert.ok(detected);
    const matches = await Promise.all(faces.map(async (f) => {
      const p = await crop(f.landmarks, dlib);
      return p.every((v, k) => v === pixels[k]);
    }));
    assert.equal(
      matches.filter(Boolean).length,
      1,
      "eval's crop is one detected face's crop on its template",
    );
  } finally {
    await kit.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("served embed of a detected face aligns on the model's own template", async () => {
  const bytes = await readSamplePhoto(PHOTO);
  const det = await FaceDetector.create(await Deno.readFile(WEIGHTS), { backend: "wasm", threads: 1 });
  const dlib = dlibChipTemplate(), input: [number, number, number] = [3, 150, 150];
  const seen: Float32Array[] = [];
  // The forward records what the server feeds the model (the crop is what is under test).
  const model = faceModelFromForward((x, [n]) => {
    seen.push(x.slice());
    return new Float32Array(n * 4).fill(1);
  }, { name: "t", inputSize: input, dim: 4, threshold: 0.5, faceTemplate: dlib });
  try {
    const app = new Hono().post("/", async (c) => {
      await embedFaces(c, model, [{ bytes }], { maxPixels: 40e6, detector: () => Promise.resolve(det) });
      return c.text("ok");
    });
    assert.equal((await app.request("/", { method: "POST" })).status, 200);
    const [f] = (await locateFaces(bytes, {}, det, 40e6)).faces;
    const src = await openImage(bytes);
    const want = normalizePixels(
      await cropPixels(src, { input, landmarks: f.landmarks, template: dlib }),
      3,
      150 * 150,
    );
    const arc = normalizePixels(await cropPixels(src, { input, landmarks: f.landmarks }), 3, 150 * 150);
    assert.deepEqual(seen[0], want);
    assert.notDeepEqual(want, arc);
  } finally {
    await det.dispose();
  }
});
