/**
 * One storage interface for face galleries, implemented in memory, on Deno KV and on Cloudflare D1.
 * Embeddings are stored as int8 (one byte per dimension, symmetric per-vector scale). The scale is
 * not stored: search uses cosine similarity, which divides it out.
 */

/** A collection (gallery) of faces, bound to one face model. */
export interface CollectionRecord {
  /** Collection id (client-chosen). */
  id: string;
  /** Name of the face model whose embeddings it holds. */
  model: string;
  /** Embedding length of that model. */
  dim: number;
  /** Client metadata (JSON object) or null. */
  metadata: Record<string, unknown> | null;
  /** ISO-8601 creation time. */
  createdAt: string;
  /** Number of faces enrolled. */
  faceCount: number;
  /** Incremented by every enrolment and face deletion; search caches are keyed on it. */
  version: number;
}

/** A stored face, without its embedding. */
export interface FaceRecord {
  /** Server-assigned face id. */
  faceId: string;
  /** Client's own id for the person, or null. */
  externalId: string | null;
  /** Client metadata (JSON object) or null. */
  metadata: Record<string, unknown> | null;
  /** ISO-8601 enrolment time. */
  createdAt: string;
}

/** A face plus its quantised embedding. */
export interface NewFace extends FaceRecord {
  /** `dim` int8 values. */
  embedding: Int8Array;
}

/** Every embedding of a collection, row-major, for brute-force search. */
export interface EmbeddingMatrix {
  /** Face id of each row. */
  faceIds: string[];
  /** External id of each row (null where none was given). */
  externalIds: (string | null)[];
  /** `faceIds.length × dim` int8 values. */
  data: Int8Array;
  /** Embedding length (row width). */
  dim: number;
}

/** A page of faces; `nextCursor` is opaque, null on the last page. */
export interface FacePage {
  /** Faces of this page. */
  faces: FaceRecord[];
  /** Cursor of the next page, or null on the last one. */
  nextCursor: string | null;
}

/** What a new collection is created with. */
export interface NewCollection {
  /** Collection id (validated by the app). */
  id: string;
  /** Name of the face model whose embeddings the collection holds. */
  model: string;
  /** Embedding size. */
  dim: number;
  /** Caller's metadata, or null. */
  metadata: Record<string, unknown> | null;
  /** ISO-8601 creation time. */
  createdAt: string;
}

/**
 * The first response to a request sent with an `Idempotency-Key`, stored atomically with the face it
 * enrolled so that a retry after a lost response replays it instead of enrolling twice.
 */
export interface IdempotencyRecord {
  /** Scope + key: a digest of the caller's API key and its `Idempotency-Key` (never the raw key). */
  key: string;
  /** Digest of what was asked (collection, fields, image bytes): a retry must match it. */
  fingerprint: string;
  /** HTTP status of the first response. */
  status: number;
  /** JSON body of the first response. */
  body: string;
  /** Expiry (ms since epoch); after it the key may be reused. */
  expiresAt: number;
}

/** Gallery storage. Every method is atomic on its own; implementations must be safe under concurrency. */
export interface GalleryStore {
  /** Short name for logs and /healthz ("memory", "deno-kv", "d1"). */
  readonly kind: string;
  /** Create if absent. Returns the stored record and whether this call created it. */
  createCollection(
    c: NewCollection,
  ): Promise<{ created: boolean; collection: CollectionRecord }>;
  /** A collection, or null if it does not exist. */
  getCollection(id: string): Promise<CollectionRecord | null>;
  /** Delete a collection and all its faces. False if it did not exist. */
  deleteCollection(id: string): Promise<boolean>;
  /**
   * Add a face atomically with the collection's counters (and, with `idem`, its idempotency record).
   * False if the collection does not exist. With `idem`: if an unexpired record already holds
   * `idem.key`, nothing is written and that record is returned.
   */
  addFace(
    collectionId: string,
    face: NewFace,
    idem?: IdempotencyRecord,
  ): Promise<boolean | IdempotencyRecord>;
  /** The unexpired idempotency record stored under `key` at time `nowMs`, or null. */
  getIdempotency(key: string, nowMs: number): Promise<IdempotencyRecord | null>;
  /** Faces ordered by faceId (time-ordered ids); null if the collection does not exist. */
  listFaces(collectionId: string, opts: { limit: number; cursor?: string | null }): Promise<FacePage | null>;
  /** False if the face (or the collection) does not exist. */
  deleteFace(collectionId: string, faceId: string): Promise<boolean>;
  /** All embeddings of a collection; null if it does not exist. */
  loadEmbeddings(collectionId: string): Promise<EmbeddingMatrix | null>;
  /** Release resources (KV handle …). */
  close?(): void | Promise<void>;
}

/** Quantise a unit vector to int8 with a symmetric per-vector scale (max |x| ↦ 127). */
export function quantize(v: Float32Array): Int8Array {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]));
  const q = new Int8Array(v.length);
  if (m === 0) return q;
  const k = 127 / m;
  for (let i = 0; i < v.length; i++) q[i] = Math.round(v[i] * k);
  return q;
}

/** Time-ordered id (UUIDv7 layout: 48-bit ms timestamp + random), so listings sort by enrolment time. */
export function newFaceId(now = Date.now()): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  let t = now;
  for (let i = 5; i >= 0; i--) {
    b[i] = t % 256;
    t = Math.floor(t / 256);
  }
  b[6] = (b[6] & 0x0f) | 0x70;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
