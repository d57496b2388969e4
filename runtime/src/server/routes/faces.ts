/**
 * Stateless face endpoints: `POST /v1/faces/embed`, `POST /v1/faces/compare`. Each handler is
 * read input → pick model → embed → answer; add an endpoint as one more `app.openapi(...)` here.
 */
import type { App, ServerDeps } from "../context.ts";
import { pickFaceModel } from "../context.ts";
import { CompareFields, ImageFields, routes } from "../contract.ts";
import { embedImages, parseLandmarks, readInput } from "../input.ts";
import { cosine } from "../search.ts";

/** Register the face routes on `app`. */
export function faceRoutes(app: App, d: ServerDeps): void {
  app.openapi(routes.embed, async (c) => {
    const { images, fields } = await readInput(c, ["image"], ImageFields);
    const m = pickFaceModel(d, fields.model);
    const [e] = await embedImages(
      c,
      m,
      [{ bytes: images[0], landmarks: parseLandmarks(fields.landmarks) }],
      d.maxPixels,
    );
    return c.json({ model: m.name, dim: m.dim, embedding: Array.from(e) }, 200);
  });

  app.openapi(routes.compare, async (c) => {
    const { images, fields } = await readInput(c, ["source", "target"], CompareFields);
    const m = pickFaceModel(d, fields.model);
    const [a, b] = await embedImages(c, m, [
      { bytes: images[0], landmarks: parseLandmarks(fields.landmarks) },
      { bytes: images[1], landmarks: parseLandmarks(fields.targetLandmarks, "targetLandmarks") },
    ], d.maxPixels);
    const threshold = fields.threshold ?? m.threshold;
    const similarity = cosine(a, b);
    return c.json({ model: m.name, similarity, match: similarity >= threshold, threshold }, 200);
  });
}
