/**
 * Route contracts of the face API: zod schemas (runtime validation of path/query/JSON) and the
 * OpenAPI document generated from them. Image uploads are described here for the document and
 * parsed in input.ts, because they come either as multipart fields or as a raw image body.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { API_ERRORS } from "./api_errors.ts";

/** Collection ids: URL-safe, 1–128 chars. */
export const COLLECTION_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export const ErrorBody = z.object({
  error: z.object({
    code: z.enum(Object.keys(API_ERRORS) as [keyof typeof API_ERRORS, ...(keyof typeof API_ERRORS)[]]),
    message: z.string(),
  }),
}).openapi("Error");

const CollectionParam = z.object({
  id: z.string().regex(COLLECTION_ID).openapi({
    param: { name: "id", in: "path" },
    example: "staff",
    description: "Collection id: letters, digits, `_`, `.`, `-`; 1–128 chars",
  }),
});
const FaceParam = CollectionParam.extend({
  faceId: z.string().min(1).max(64).openapi({ param: { name: "faceId", in: "path" } }),
});

// An empty field (a blank HTML form input) means "not given", not 0 (which `z.coerce` would make it).
const blankIsAbsent = (v: unknown) => typeof v === "string" && v.trim() === "" ? undefined : v;

function faceIndex(what: string) {
  return z.preprocess(blankIsAbsent, z.coerce.number().int().min(0).max(99).optional()).openapi({
    description: `${what}: 0-based index in \`/v1/faces/detect\`'s order (largest box first; default 0)`,
    type: "integer",
  });
}

/** Optional fields shared by image endpoints (multipart fields or, with a raw body, query parameters). */
export const ImageFields = z.object({
  model: z.string().max(128).optional().openapi({
    description: "Face model name (default: the first loaded)",
  }),
  landmarks: z.string().max(2000).optional().openapi({
    description: "JSON array of 5 [x, y] points in pixels of the upright image, in this order: eye on the " +
      "image's left, eye on the image's right, nose tip, mouth corner on the image's left, mouth corner on the " +
      "image's right (ML Kit: RIGHT_EYE, LEFT_EYE, NOSE_BASE, MOUTH_RIGHT, MOUTH_LEFT for a non-mirrored photo). " +
      "Without it the server detects the faces and uses the largest (or the one `face` names); a server " +
      "without a detector centre-crops.",
    example: "[[120,140],[200,138],[160,190],[128,235],[195,233]]",
  }),
  face: faceIndex("Which detected face to use when no `landmarks` are sent"),
});

const threshold = z.preprocess(blankIsAbsent, z.coerce.number().min(-1).max(1).optional()).openapi({
  description: "Cosine-similarity threshold (default: the model's; an empty field also means the default)",
  type: "number",
});
const k = (max: number, def: number) =>
  z.coerce.number().int().min(1).max(max).optional().openapi({
    description: `How many results (1–${max}, default ${def})`,
    type: "integer",
  });

export const CompareFields = ImageFields.extend({
  threshold,
  targetLandmarks: ImageFields.shape.landmarks.openapi({
    description: "Landmarks of `target` (as `landmarks`)",
  }),
  targetFace: faceIndex("Which detected face of `target` to use (as `face`)"),
});
const minFace = z.preprocess(blankIsAbsent, z.coerce.number().min(8).max(10000).optional()).openapi({
  description: "Smallest face side (px of the upright image) to look for; default 40. Smaller means more " +
    "detector runs (at most 40 per image; the answer's `minFace` says what was reached)",
  type: "number",
});
export const DetectFields = z.object({
  minFace,
  maxFaces: z.preprocess(blankIsAbsent, z.coerce.number().int().min(1).max(100).optional()).openapi({
    description: "At most this many faces, largest first (1–100, default 100)",
    type: "integer",
  }),
});
export const EnrolFields = ImageFields.extend({
  maxFaces: z.preprocess(blankIsAbsent, z.coerce.number().int().min(1).max(100).optional()).openapi({
    description: "Enrol the N largest detected faces of the image (a group photo), each as its own face " +
      "record sharing `externalId` and `metadata` (like Rekognition IndexFaces `MaxFaces`). Default 1. " +
      "Not with `landmarks` or `face`",
    type: "integer",
  }),
  externalId: z.string().min(1).max(256).optional().openapi({ description: "Your id for the person" }),
  // UTF-16 length ≤ UTF-8 length, so this is a cheap first bound; input.ts checks the bytes.
  metadata: z.string().max(4096).optional().openapi({
    description: "JSON object stored with the face (≤ 4096 bytes of UTF-8)",
  }),
});
export const SearchFields = ImageFields.extend({ k: k(100, 5), threshold });
export const ClassifyFields = z.object({
  model: z.string().max(128).optional().openapi({
    description: "Classifier name (default: the first loaded)",
  }),
  k: k(1000, 5),
});

const binary = { type: "string", format: "binary" } as const;

/** Request body schemas registered as components by the app (doc only: parsing is in app.ts). */
export const FORM_SCHEMAS: Record<string, z.ZodObject> = {};

/** Request body description for an endpoint taking image field(s). */
function imageBody(name: string, images: string[], fields: z.ZodObject, rawAllowed: boolean) {
  const files = Object.fromEntries(
    images.map((f) => [f, z.string().openapi({ ...binary, description: "JPEG or PNG image" })]),
  );
  FORM_SCHEMAS[name] = fields.extend(files).openapi(name);
  const content: Record<string, { schema: Record<string, unknown> }> = {
    "multipart/form-data": { schema: { $ref: `#/components/schemas/${name}` } },
  };
  if (rawAllowed) {
    content["image/jpeg"] = { schema: binary };
    content["image/png"] = { schema: binary };
  }
  return {
    required: true,
    description: rawAllowed
      ? "multipart/form-data with the fields below, or the raw image as the body (other fields then go in the query)"
      : "multipart/form-data",
    content,
  };
}

const errors = (...codes: number[]) =>
  Object.fromEntries(
    [...new Set([401, 429, ...codes])].map((s) => [
      s,
      {
        description: Object.entries(API_ERRORS).filter(([, v]) => v === s).map(([k]) => k).join(", "),
        content: { "application/json": { schema: ErrorBody } },
      },
    ]),
  );
const imageErrors = errors(400, 413, 415, 422, 500);
const security = [{ bearerAuth: [] }];

const Point = z.tuple([z.number(), z.number()]);
export const DetectedFace = z.object({
  box: z.object({ x: z.number(), y: z.number(), width: z.number(), height: z.number() }).openapi({
    description: "Face box in pixels of the upright image (EXIF orientation applied)",
  }),
  landmarks: z.array(Point).length(5).openapi({
    description:
      "Eye (image left), eye (image right), nose tip, mouth corner (left), mouth corner (right): " +
      "the `landmarks` order; mouth corners are placed from BlazeFace's mouth centre (docs/api.md)",
  }),
  score: z.number().openapi({ description: "Detector confidence (0.5–1)" }),
}).openapi("DetectedFace");
/** The face a response used: its index in `/v1/faces/detect`'s order, box and the landmarks aligned with. */
export const UsedFace = DetectedFace.extend({ index: z.number().int() }).nullable().openapi({
  description: "The detected face used (`landmarks`: those the crop was aligned with, after a refinement " +
    "pass); null when the client sent landmarks (or the server has no detector and centre-cropped)",
});

export const Detection = z.object({
  width: z.number().int().openapi({ description: "Upright image width" }),
  height: z.number().int(),
  faces: z.array(DetectedFace).openapi({ description: "Largest box first" }),
  minFace: z.number().openapi({ description: "Smallest face side (px) the search reached" }),
}).openapi("Detection");

export const Embedding = z.object({
  model: z.string(),
  dim: z.number().int(),
  embedding: z.array(z.number()).openapi({ description: "L2-normalised embedding" }),
  face: UsedFace,
}).openapi("Embedding");

export const Comparison = z.object({
  model: z.string(),
  similarity: z.number().openapi({ description: "Cosine similarity in [-1, 1]" }),
  match: z.boolean(),
  threshold: z.number(),
  face: UsedFace,
  targetFace: UsedFace,
}).openapi("Comparison");

/** Optional JSON body of `PUT /v1/collections/{id}`. */
export const CollectionCreate = z.object({
  model: z.string().max(128).optional().openapi({ description: "Face model (default: the first loaded)" }),
  metadata: z.record(z.string(), z.unknown()).optional().openapi({
    description: "JSON object stored with the collection (≤ 4096 bytes of UTF-8 JSON)",
  }),
}).openapi("CollectionCreate");
FORM_SCHEMAS.CollectionCreate = CollectionCreate;

export const Collection = z.object({
  id: z.string(),
  model: z.string(),
  dim: z.number().int(),
  faceCount: z.number().int(),
  createdAt: z.string(),
  metadata: z.record(z.string(), z.unknown()).nullable(),
}).openapi("Collection");

export const Face = z.object({
  faceId: z.string(),
  externalId: z.string().nullable(),
  metadata: z.record(z.string(), z.unknown()).nullable(),
  createdAt: z.string(),
}).openapi("Face");

export const Match = z.object({
  faceId: z.string(),
  externalId: z.string().nullable(),
  similarity: z.number(),
}).openapi("Match");

export const ModelInfo = z.object({
  name: z.string(),
  task: z.enum(["face", "classifier"]),
  default: z.boolean(),
  dtype: z.string(),
  backend: z.string(),
  inputSize: z.array(z.number().int()),
  dim: z.number().int().optional(),
  threshold: z.number().optional(),
  labels: z.array(z.string()).optional(),
}).openapi("ModelInfo");

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

export const routes = {
  healthz: createRoute({
    method: "get",
    path: "/healthz",
    summary: "Liveness",
    responses: {
      200: json(z.object({ status: z.literal("ok"), models: z.number(), store: z.string() }), "Up"),
    },
  }),
  models: createRoute({
    method: "get",
    path: "/v1/models",
    summary: "Loaded models",
    security,
    responses: { 200: json(z.object({ models: z.array(ModelInfo) }), "Models"), ...errors() },
  }),
  embed: createRoute({
    method: "post",
    path: "/v1/faces/embed",
    summary: "Embed one face",
    security,
    request: { query: ImageFields, body: imageBody("EmbedForm", ["image"], ImageFields, true) },
    responses: { 200: json(Embedding, "Embedding"), ...imageErrors },
  }),
  detect: createRoute({
    method: "post",
    path: "/v1/faces/detect",
    summary: "Find the faces in a photo",
    description: "Boxes, 5 landmarks and scores in pixels of the upright image. An image without faces " +
      "answers 200 with `faces: []`; the endpoints that embed answer 422 `no_face` instead.",
    security,
    request: { query: DetectFields, body: imageBody("DetectForm", ["image"], DetectFields, true) },
    responses: { 200: json(Detection, "Faces"), ...imageErrors, ...errors(404) },
  }),
  compare: createRoute({
    method: "post",
    path: "/v1/faces/compare",
    summary: "Compare two faces (1:1 verification)",
    description: "`landmarks` applies to `source`; `targetLandmarks` to `target`. Multipart only.",
    security,
    request: {
      query: CompareFields,
      body: imageBody("CompareForm", ["source", "target"], CompareFields, false),
    },
    responses: { 200: json(Comparison, "Comparison"), ...imageErrors },
  }),
  putCollection: createRoute({
    method: "put",
    path: "/v1/collections/{id}",
    summary: "Create a collection (idempotent)",
    security,
    request: {
      params: CollectionParam,
      // Doc-only reference: the handler parses the optional body itself (see CollectionCreate).
      body: {
        required: false,
        content: { "application/json": { schema: { $ref: "#/components/schemas/CollectionCreate" } } },
      },
    },
    responses: {
      200: json(Collection, "Already existed"),
      201: json(Collection, "Created"),
      ...errors(400, 409),
    },
  }),
  getCollection: createRoute({
    method: "get",
    path: "/v1/collections/{id}",
    summary: "Describe a collection",
    security,
    request: { params: CollectionParam },
    responses: { 200: json(Collection, "Collection"), ...errors(400, 404) },
  }),
  deleteCollection: createRoute({
    method: "delete",
    path: "/v1/collections/{id}",
    summary: "Delete a collection and all its faces",
    security,
    request: { params: CollectionParam },
    responses: {
      200: json(z.object({ id: z.string(), deleted: z.literal(true) }), "Deleted"),
      ...errors(400, 404),
    },
  }),
  enrol: createRoute({
    method: "post",
    path: "/v1/collections/{id}/faces",
    summary: "Enrol a face",
    description: "Send an `Idempotency-Key` header (1–255 visible ASCII characters, e.g. a UUID) to make a " +
      "retry safe: the same key with the same request within 24 h answers the first response again " +
      "(header `Idempotent-Replayed: true`) without enrolling twice; the same key with a different " +
      "request answers 422 `idempotency_key_reused`. Keys are scoped to the API key.",
    security,
    request: {
      headers: z.object({
        "idempotency-key": z.string().min(1).max(255).optional().openapi({
          param: { name: "idempotency-key", in: "header" },
          description: "Client-chosen unique key of this enrolment (e.g. a UUID); see above",
          example: "5f0c6c1e-2f4b-4c1a-9d59-0a9a3c1b7e21",
        }),
      }),
      params: CollectionParam,
      query: EnrolFields,
      body: imageBody("EnrolForm", ["image"], EnrolFields, true),
    },
    responses: {
      201: json(
        z.object({
          faceId: z.string().openapi({ description: "The (first) enrolled face" }),
          collectionId: z.string(),
          externalId: z.string().nullable(),
          face: UsedFace,
          faces: z.array(z.object({ faceId: z.string(), face: UsedFace })).openapi({
            description: "Every enrolled face (one unless `maxFaces` > 1), largest first",
          }),
        }),
        "Enrolled",
      ),
      ...imageErrors,
      ...errors(404, 409, 422),
    },
  }),
  listFaces: createRoute({
    method: "get",
    path: "/v1/collections/{id}/faces",
    summary: "List faces (paged, in enrolment order)",
    security,
    request: {
      params: CollectionParam,
      query: z.object({
        limit: z.coerce.number().int().min(1).max(1000).optional().openapi({ type: "integer", example: 100 }),
        cursor: z.string().max(512).optional().openapi({ description: "`nextCursor` of the previous page" }),
      }),
    },
    responses: {
      200: json(z.object({ faces: z.array(Face), nextCursor: z.string().nullable() }), "Page"),
      ...errors(400, 404),
    },
  }),
  deleteFace: createRoute({
    method: "delete",
    path: "/v1/collections/{id}/faces/{faceId}",
    summary: "Delete a face",
    security,
    request: { params: FaceParam },
    responses: {
      200: json(z.object({ faceId: z.string(), deleted: z.literal(true) }), "Deleted"),
      ...errors(400, 404),
    },
  }),
  search: createRoute({
    method: "post",
    path: "/v1/collections/{id}/search",
    summary: "Search a collection (1:N identification)",
    security,
    request: {
      params: CollectionParam,
      query: SearchFields,
      body: imageBody("SearchForm", ["image"], SearchFields, true),
    },
    responses: {
      200: json(
        z.object({
          model: z.string(),
          threshold: z.number(),
          searchedFaces: z.number().int(),
          matches: z.array(Match),
          face: UsedFace,
        }),
        "Matches with similarity ≥ threshold, best first",
      ),
      ...imageErrors,
      ...errors(404, 409),
    },
  }),
  classify: createRoute({
    method: "post",
    path: "/v1/classify",
    summary: "Classify an image with a classifier bundle",
    security,
    request: { query: ClassifyFields, body: imageBody("ClassifyForm", ["image"], ClassifyFields, true) },
    responses: {
      200: json(
        z.object({
          model: z.string(),
          predictions: z.array(
            z.object({ label: z.string(), index: z.number().int(), probability: z.number() }),
          ),
        }),
        "Top-k labels, softmax probabilities",
      ),
      ...imageErrors,
    },
  }),
};
