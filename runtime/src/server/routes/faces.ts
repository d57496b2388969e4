/**
 * Stateless face endpoints: `POST /v1/faces/detect`, `/v1/faces/embed`, `/v1/faces/compare`. Each
 * handler is read input → pick model → (detect) → embed → answer; add an endpoint as one more
 * `app.openapi(...)` here.
 */
import { setMetric } from "hono/timing";
import { findFaces } from "../../face/detect.ts";
import { faceJson } from "../face_select.ts";
import type { App, ServerDeps } from "../context.ts";
import { pickFaceModel } from "../context.ts";
import { CompareFields, DetectFields, ImageFields, routes } from "../contract.ts";
import { ApiError } from "../api_errors.ts";
import { openImage } from "../../image/mod.ts";
import { embedFaces, parseLandmarks, readInput } from "../input.ts";
import { cosine } from "../search.ts";

/** Register the face routes on `app`. */
export function faceRoutes(app: App, d: ServerDeps): void {
  app.openapi(routes.detect, async (c) => {
    const { images, fields } = await readInput(c, ["image"], DetectFields);
    if (!d.detector) throw new ApiError("not_found", "this server has no face detector loaded");
    const detector = await d.detector();
    const t0 = performance.now();
    const src = await openImage(images[0], { maxPixels: d.maxPixels });
    const t1 = performance.now();
    setMetric(c, "decode", t1 - t0, "header + entropy decode");
    const r = await findFaces(detector, src, {
      all: true,
      minFace: fields.minFace,
      maxFaces: fields.maxFaces,
    });
    setMetric(c, "detect", performance.now() - t1, `scaled decode + ${r.windows} windows`);
    return c.json({
      width: src.width,
      height: src.height,
      faces: r.faces.map(faceJson),
      minFace: Math.round(r.minFace * 10) / 10,
    }, 200);
  });

  app.openapi(routes.embed, async (c) => {
    const { images, fields } = await readInput(c, ["image"], ImageFields);
    const m = pickFaceModel(d, fields.model);
    const [[e]] = await embedFaces(c, m, [{
      bytes: images[0],
      choice: { landmarks: parseLandmarks(fields.landmarks), index: fields.face },
    }], d);
    return c.json({ model: m.name, dim: m.dim, embedding: Array.from(e.embedding), face: e.face }, 200);
  });

  app.openapi(routes.compare, async (c) => {
    const { images, fields } = await readInput(c, ["source", "target"], CompareFields);
    const m = pickFaceModel(d, fields.model);
    const [[a], [b]] = await embedFaces(c, m, [
      { bytes: images[0], choice: { landmarks: parseLandmarks(fields.landmarks), index: fields.face } },
      {
        bytes: images[1],
        choice: {
          landmarks: parseLandmarks(fields.targetLandmarks, "targetLandmarks"),
          index: fields.targetFace,
        },
      },
    ], d);
    const threshold = fields.threshold ?? m.threshold;
    const similarity = cosine(a.embedding, b.embedding);
    return c.json({
      model: m.name,
      similarity,
      match: similarity >= threshold,
      threshold,
      face: a.face,
      targetFace: b.face,
    }, 200);
  });
}
