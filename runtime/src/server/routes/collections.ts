/**
 * Galleries: `PUT|GET|DELETE /v1/collections/{id}`, enrol / list / delete faces, and 1:N search.
 * Enrolment honours `Idempotency-Key` (see ../idempotency.ts).
 */
import type { z } from "@hono/zod-openapi";
import { setMetric } from "hono/timing";
import type { UsedFace } from "../face_input.ts";
import type { App, ServerDeps } from "../context.ts";
import { pickFaceModel } from "../context.ts";
import { CollectionCreate, EnrolFields, routes, SearchFields } from "../contract.ts";
import { ApiError } from "../api_errors.ts";
import { idempotencyScope, replayed, requestFingerprint } from "../idempotency.ts";
import {
  checkMetadataSize,
  embedFaces,
  mediaType,
  parseJsonField,
  parseLandmarks,
  parseMetadata,
  readInput,
  zodMessage,
} from "../input.ts";
import type { FaceModel } from "../served_model.ts";
import type { CollectionRecord } from "../store/types.ts";
import { newFaceId, quantize } from "../store/types.ts";

const collectionJson = (c: CollectionRecord) => ({
  id: c.id,
  model: c.model,
  dim: c.dim,
  faceCount: c.faceCount,
  createdAt: c.createdAt,
  metadata: c.metadata,
});

type EnrolAnswer = {
  faceId: string;
  collectionId: string;
  externalId: string | null;
  face: UsedFace | null;
  faces: { faceId: string; face: UsedFace | null }[];
};

/** Register the collection routes on `app`. */
export function collectionRoutes(app: App, d: ServerDeps): void {
  const { store, index } = d;

  async function collectionOr404(id: string): Promise<CollectionRecord> {
    const col = await store.getCollection(id);
    if (!col) throw new ApiError("not_found", `collection '${id}' does not exist; create it with PUT`);
    return col;
  }

  function modelOfCollection(col: CollectionRecord, requested?: string): FaceModel {
    if (requested !== undefined && requested !== col.model) {
      throw new ApiError(
        "invalid_request",
        `collection '${col.id}' uses model '${col.model}', not '${requested}'`,
      );
    }
    const m = d.faceModels.find((f) => f.name === col.model);
    if (!m) {
      throw new ApiError(
        "conflict",
        `collection '${col.id}' was built with model '${col.model}', which this server does not serve`,
      );
    }
    return m;
  }

  app.openapi(routes.putCollection, async (c) => {
    const { id } = c.req.valid("param");
    let body: z.infer<typeof CollectionCreate> = {};
    const text = await c.req.text();
    if (text.trim()) {
      if (mediaType(c) !== "application/json") {
        throw new ApiError("unsupported_media_type", "send the collection body as application/json");
      }
      const parsed = CollectionCreate.safeParse(parseJsonField("body", text));
      if (!parsed.success) throw new ApiError("invalid_request", zodMessage(parsed.error));
      body = parsed.data;
      if (body.metadata) checkMetadataSize(JSON.stringify(body.metadata), "collection");
    }
    const m = pickFaceModel(d, body.model);
    const { created, collection } = await store.createCollection({
      id,
      model: m.name,
      dim: m.dim,
      metadata: body.metadata ?? null,
      createdAt: new Date().toISOString(),
    });
    if (!created && body.model !== undefined && collection.model !== body.model) {
      throw new ApiError("conflict", `collection '${id}' already exists with model '${collection.model}'`);
    }
    return c.json(collectionJson(collection), created ? 201 : 200);
  });

  app.openapi(routes.getCollection, async (c) => {
    const { id } = c.req.valid("param");
    return c.json(collectionJson(await collectionOr404(id)), 200);
  });

  app.openapi(routes.deleteCollection, async (c) => {
    const { id } = c.req.valid("param");
    const ok = await store.deleteCollection(id);
    index.invalidate(id);
    if (!ok) throw new ApiError("not_found", `collection '${id}' does not exist`);
    return c.json({ id, deleted: true as const }, 200);
  });

  app.openapi(routes.enrol, async (c) => {
    const { id } = c.req.valid("param");
    const scope = await idempotencyScope(c);
    const { images, fields } = await readInput(c, ["image"], EnrolFields);
    const fingerprint = scope ? await requestFingerprint(`enrol\n${id}`, fields, images) : "";
    if (scope) {
      const had = await store.getIdempotency(scope, Date.now());
      if (had) return c.json(replayed<EnrolAnswer>(c, had, fingerprint), 201);
    }
    const metadata = parseMetadata(fields.metadata);
    const landmarks = parseLandmarks(fields.landmarks);
    const maxFaces = fields.maxFaces ?? 1;
    if (maxFaces > 1 && (landmarks || fields.face !== undefined)) {
      throw new ApiError(
        "invalid_request",
        "'maxFaces' enrols the largest faces: send it without 'landmarks' and 'face'",
      );
    }
    const col = await collectionOr404(id);
    const m = modelOfCollection(col, fields.model);
    const [embedded] = await embedFaces(c, m, [{
      bytes: images[0],
      choice: { landmarks, index: fields.face, maxFaces },
    }], d);
    const t0 = performance.now();
    const externalId = fields.externalId ?? null;
    const records = embedded.map((e) => ({ faceId: newFaceId(), face: e.face, q: quantize(e.embedding) }));
    const answer: EnrolAnswer = {
      faceId: records[0].faceId,
      collectionId: id,
      externalId,
      face: records[0].face,
      faces: records.map((r) => ({ faceId: r.faceId, face: r.face })),
    };
    const createdAt = new Date().toISOString();
    // A group photo stores its faces one by one; the idempotency record rides on the last, so a retry
    // after a crash midway may enrol the first faces twice (docs/api.md).
    for (let i = 0; i < records.length; i++) {
      const r = records[i], last = i === records.length - 1;
      const face = { faceId: r.faceId, externalId, metadata, createdAt, embedding: r.q };
      const idem = scope && last
        ? {
          key: scope,
          fingerprint,
          status: 201,
          body: JSON.stringify(answer),
          expiresAt: Date.now() + d.idempotencyTtlMs,
        }
        : undefined;
      const added = await store.addFace(id, face, idem);
      if (added === false) throw new ApiError("not_found", `collection '${id}' was deleted`);
      if (added !== true) return c.json(replayed<EnrolAnswer>(c, added, fingerprint), 201); // a concurrent retry won
      index.noteAdded(id, { faceId: r.faceId, externalId, embedding: r.q });
    }
    setMetric(c, "store", performance.now() - t0);
    return c.json(answer, 201);
  });

  app.openapi(routes.listFaces, async (c) => {
    const { id } = c.req.valid("param");
    const q = c.req.valid("query");
    let page;
    try {
      page = await store.listFaces(id, { limit: q.limit ?? 100, cursor: q.cursor ?? null });
    } catch (e) {
      if (q.cursor) {
        throw new ApiError("invalid_request", "invalid cursor: pass nextCursor from the previous page");
      }
      throw e;
    }
    if (!page) throw new ApiError("not_found", `collection '${id}' does not exist`);
    return c.json(page, 200);
  });

  app.openapi(routes.deleteFace, async (c) => {
    const { id, faceId } = c.req.valid("param");
    if (!(await store.deleteFace(id, faceId))) {
      await collectionOr404(id);
      throw new ApiError("not_found", `face '${faceId}' is not in collection '${id}'`);
    }
    index.noteDeleted(id, faceId);
    return c.json({ faceId, deleted: true as const }, 200);
  });

  app.openapi(routes.search, async (c) => {
    const { id } = c.req.valid("param");
    const { images, fields } = await readInput(c, ["image"], SearchFields);
    const landmarks = parseLandmarks(fields.landmarks);
    const col = await collectionOr404(id);
    const m = modelOfCollection(col, fields.model);
    const [[e]] = await embedFaces(
      c,
      m,
      [{ bytes: images[0], choice: { landmarks, index: fields.face } }],
      d,
    );
    const threshold = fields.threshold ?? m.threshold;
    const t0 = performance.now();
    const r = await index.search(col, e.embedding, fields.k ?? 5, threshold);
    setMetric(c, "search", performance.now() - t0);
    if (!r) throw new ApiError("not_found", `collection '${id}' was deleted`);
    return c.json(
      { model: m.name, threshold, searchedFaces: r.searched, matches: r.matches, face: e.face },
      200,
    );
  });
}
