/**
 * From an HTTP request to model input: image fields and other fields (multipart or a raw image body
 * plus query), JSON fields (landmarks, metadata), and decode → align/crop → normalise → embed.
 * Routes call these; images without landmarks go through the face detector (face_input.ts).
 */
import type { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { setMetric } from "hono/timing";
import { cropPixels, imageToTensor, normalizePixels, type Point } from "../image/mod.ts";
import type { ServerDeps } from "./context.ts";
import { type FaceChoice, locateFaces, type UsedFace } from "./face_input.ts";
import { ApiError } from "./api_errors.ts";
import type { FaceModel, ServedModel } from "./served_model.ts";

/** Metadata cap (collection and face), in UTF-8 bytes of its JSON. */
export const METADATA_MAX_BYTES = 4096;

const enc = new TextEncoder();

/** UTF-8 length of a string (what "bytes" means in limits; `.length` counts UTF-16 units). */
export const utf8Bytes = (s: string): number => enc.encode(s).length;

/** One line per zod issue, `path: message`. */
export function zodMessage(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join(".") || "value"}: ${i.message}`).join("; ");
}

/** JSON.parse of an optional field, as a typed error. */
export function parseJsonField(name: string, s: string | undefined): unknown {
  if (s === undefined) return undefined;
  try {
    return JSON.parse(s);
  } catch {
    throw new ApiError("invalid_request", `field '${name}' is not valid JSON`);
  }
}

/** Landmarks: `[[x,y] ×5]` or a flat list of 10 numbers. */
export function parseLandmarks(s: string | undefined, name = "landmarks"): Point[] | undefined {
  const v = parseJsonField(name, s);
  if (v === undefined) return undefined;
  const bad = () =>
    new ApiError("invalid_request", `'${name}' must be 5 [x, y] points (or 10 numbers) in image pixels`);
  if (!Array.isArray(v)) throw bad();
  const flat = v.length === 10 && v.every((x) => typeof x === "number")
    ? v as number[]
    : v.length === 5 && v.every((p) => Array.isArray(p) && p.length === 2)
    ? (v as number[][]).flat()
    : null;
  if (!flat || !flat.every((x) => typeof x === "number" && Number.isFinite(x) && Math.abs(x) < 1e6)) {
    throw bad();
  }
  return [0, 1, 2, 3, 4].map((i) => [flat[2 * i], flat[2 * i + 1]] as Point);
}

/** Throw `invalid_request` if metadata's JSON is above {@link METADATA_MAX_BYTES} UTF-8 bytes. */
export function checkMetadataSize(json: string, what: string): void {
  if (utf8Bytes(json) > METADATA_MAX_BYTES) {
    throw new ApiError(
      "invalid_request",
      `${what} metadata must be at most ${METADATA_MAX_BYTES} bytes of JSON (UTF-8)`,
    );
  }
}

/** A face's `metadata` field: a JSON object of at most 4096 UTF-8 bytes, or null when absent. */
export function parseMetadata(s: string | undefined): Record<string, unknown> | null {
  if (s === undefined) return null;
  checkMetadataSize(s, "face");
  const v = parseJsonField("metadata", s);
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ApiError("invalid_request", "'metadata' must be a JSON object");
  }
  return v as Record<string, unknown>;
}

/** Content type without parameters, lower case. */
export const mediaType = (c: Context): string =>
  (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();

/** Images (by field name) and the other fields, from multipart or a raw image body + query. */
export async function readInput<S extends z.ZodObject>(
  c: Context,
  imageFields: string[],
  schema: S,
): Promise<{ images: Uint8Array[]; fields: z.infer<S> }> {
  const ct = mediaType(c);
  const raw: Record<string, string> = { ...c.req.query() };
  const images: Uint8Array[] = [];
  if (ct === "multipart/form-data") {
    let form: FormData;
    try {
      form = await c.req.formData();
    } catch {
      throw new ApiError("invalid_request", "malformed multipart/form-data body");
    }
    for (const f of imageFields) {
      const v = form.get(f);
      if (v === null) throw new ApiError("invalid_request", `missing image field '${f}'`);
      if (typeof v === "string") throw new ApiError("invalid_request", `field '${f}' must be a file upload`);
      images.push(new Uint8Array(await v.arrayBuffer()));
    }
    for (const [k, v] of form.entries()) {
      if (typeof v === "string" && !imageFields.includes(k)) raw[k] = v; // form fields win over query
    }
  } else if (ct === "image/jpeg" || ct === "image/png") {
    if (imageFields.length !== 1) {
      throw new ApiError(
        "unsupported_media_type",
        `this endpoint takes ${imageFields.length} images: send multipart/form-data with fields ${imageFields}`,
      );
    }
    images.push(new Uint8Array(await c.req.arrayBuffer()));
  } else {
    throw new ApiError(
      "unsupported_media_type",
      `content type '${ct || "(none)"}' not accepted: send multipart/form-data` +
        (imageFields.length === 1 ? " or a raw image/jpeg or image/png body" : ""),
    );
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new ApiError("invalid_request", zodMessage(parsed.error));
  return { images, fields: parsed.data as z.infer<S> };
}

/** Decode + align/crop + normalise one image for a model (the shared image pipeline); C·H·W floats. */
export function prepare(
  bytes: Uint8Array,
  m: ServedModel,
  maxPixels: number,
  landmarks?: Point[],
): Promise<Float32Array> {
  const { mean, std } = m.preprocess ?? {};
  return imageToTensor(bytes, {
    input: m.inputSize,
    landmarks,
    maxPixels,
    mean,
    std,
    template: m.faceTemplate,
  });
}

/** One image of a request and how it chooses its face(s). */
export interface FaceInput {
  bytes: Uint8Array;
  /** Client landmarks, or which detected face(s) to use. */
  choice?: FaceChoice;
}

/** An embedding and the detected face it came from (null: client landmarks, or no detector configured). */
export interface EmbeddedFace {
  embedding: Float32Array;
  face: UsedFace | null;
}

/**
 * Embed the face(s) of each image in one batch: the client's landmarks, else the detector's face(s)
 * (largest by default, an index, or the N largest), else — no detector configured — the centre crop.
 * Records decode/detect/infer in Server-Timing. One array of faces per input image.
 */
export async function embedFaces(
  c: Context,
  m: FaceModel,
  inputs: FaceInput[],
  d: Pick<ServerDeps, "maxPixels" | "detector">,
): Promise<EmbeddedFace[][]> {
  const t0 = performance.now();
  const detector = d.detector ? await d.detector() : undefined;
  const { mean, std } = m.preprocess ?? {};
  const [ch, h, w] = m.inputSize;
  const prepared: { x: Float32Array; face: UsedFace | null }[][] = [];
  for (const im of inputs) {
    const choice = im.choice ?? {};
    if (choice.landmarks || !detector) {
      prepared.push([{ x: await prepare(im.bytes, m, d.maxPixels, choice.landmarks), face: null }]);
      continue;
    }
    const { src, faces } = await locateFaces(im.bytes, choice, detector, d.maxPixels);
    const one: { x: Float32Array; face: UsedFace | null }[] = [];
    for (const f of faces) {
      const px = await cropPixels(src, { input: m.inputSize, landmarks: f.landmarks });
      one.push({ x: normalizePixels(px, ch, h * w, mean, std), face: f.face });
    }
    prepared.push(one);
  }
  const all = prepared.flat(), sz = ch * h * w;
  const batch = new Float32Array(all.length * sz);
  all.forEach((p, i) => batch.set(p.x, i * sz));
  const t1 = performance.now();
  setMetric(c, "decode", t1 - t0, detector ? "decode+detect+align" : "decode+align");
  const out = await m.embed(batch, all.length);
  setMetric(c, "infer", performance.now() - t1, `${m.name} ${m.backend}`);
  let k = 0;
  return prepared.map((faces) =>
    faces.map((f) => ({ embedding: out.slice(k * m.dim, ++k * m.dim), face: f.face }))
  );
}
