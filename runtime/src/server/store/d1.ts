/**
 * Cloudflare D1 gallery store, written against the D1 binding interface (prepared statements;
 * `batch()` runs its statements in one transaction, which is what makes enrolment atomic).
 * Schema: `runtime/adapter/cloudflare/migrations/` (0001 gallery, 0002 idempotency records).
 */
import type {
  CollectionRecord,
  EmbeddingMatrix,
  FacePage,
  GalleryStore,
  IdempotencyRecord,
  NewCollection,
  NewFace,
} from "./types.ts";

/** The subset of Cloudflare's `D1PreparedStatement` used here. */
export interface D1PreparedStatementLike {
  bind(...values: unknown[]): D1PreparedStatementLike;
  first<T = Record<string, unknown>>(): Promise<T | null>;
  all<T = Record<string, unknown>>(): Promise<{ results: T[] }>;
  run(): Promise<{ meta: { changes?: number } }>;
}

/** The subset of Cloudflare's `D1Database` binding used here. */
export interface D1DatabaseLike {
  prepare(sql: string): D1PreparedStatementLike;
  batch<T = unknown>(
    statements: D1PreparedStatementLike[],
  ): Promise<{ results?: T[]; meta: { changes?: number } }[]>;
}

interface ColRow {
  id: string;
  model: string;
  dim: number;
  metadata: string | null;
  created_at: string;
  face_count: number;
  version: number;
}

/** D1 returns BLOBs as number[] (Workers) or ArrayBuffer/Uint8Array (other drivers). */
function blobBytes(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (Array.isArray(v)) return Uint8Array.from(v as number[]);
  throw new Error(`unexpected BLOB value of type ${typeof v}`);
}

const parseJson = (s: string | null) => (s === null ? null : JSON.parse(s) as Record<string, unknown>);

function toCollection(r: ColRow): CollectionRecord {
  return {
    id: r.id,
    model: r.model,
    dim: Number(r.dim),
    metadata: parseJson(r.metadata),
    createdAt: r.created_at,
    faceCount: Number(r.face_count),
    version: Number(r.version),
  };
}

/** A {@link GalleryStore} on a D1 binding (`env.DB` in a Worker). */
export class D1Store implements GalleryStore {
  readonly kind = "d1";
  readonly db: D1DatabaseLike;
  constructor(db: D1DatabaseLike) {
    this.db = db;
  }

  async createCollection(
    c: NewCollection,
  ): Promise<{ created: boolean; collection: CollectionRecord }> {
    const res = await this.db.prepare(
      "INSERT INTO collections (id, model, dim, metadata, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
    ).bind(c.id, c.model, c.dim, c.metadata === null ? null : JSON.stringify(c.metadata), c.createdAt).run();
    const collection = await this.getCollection(c.id);
    if (!collection) throw new Error(`createCollection(${c.id}): row vanished`);
    return { created: (res.meta.changes ?? 0) > 0, collection };
  }

  async getCollection(id: string): Promise<CollectionRecord | null> {
    const r = await this.db.prepare("SELECT * FROM collections WHERE id = ?").bind(id).first<ColRow>();
    return r ? toCollection(r) : null;
  }

  async deleteCollection(id: string): Promise<boolean> {
    const [, col] = await this.db.batch([
      this.db.prepare("DELETE FROM faces WHERE collection_id = ?").bind(id),
      this.db.prepare("DELETE FROM collections WHERE id = ?").bind(id),
    ]);
    return (col.meta.changes ?? 0) > 0;
  }

  async addFace(
    collectionId: string,
    face: NewFace,
    idem?: IdempotencyRecord,
  ): Promise<boolean | IdempotencyRecord> {
    const emb = face.embedding;
    const blob = emb.buffer.slice(emb.byteOffset, emb.byteOffset + emb.byteLength);
    // With a key: purge expired records, then a plain INSERT whose primary-key conflict fails the
    // whole batch (one transaction), so a face is never written without its record or twice.
    const idemStmts = idem
      ? [
        this.db.prepare("DELETE FROM idempotency WHERE expires_at <= ?").bind(Date.now()),
        this.db.prepare(
          "INSERT INTO idempotency (key, fingerprint, status, body, expires_at) " +
            "SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM collections WHERE id = ?)",
        ).bind(idem.key, idem.fingerprint, idem.status, idem.body, idem.expiresAt, collectionId),
      ]
      : [];
    let results;
    try {
      results = await this.db.batch([
        ...idemStmts,
        this.db.prepare(
          "INSERT INTO faces (collection_id, face_id, external_id, metadata, created_at, embedding) " +
            "SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM collections WHERE id = ?)",
        ).bind(
          collectionId,
          face.faceId,
          face.externalId,
          face.metadata === null ? null : JSON.stringify(face.metadata),
          face.createdAt,
          blob,
          collectionId,
        ),
        this.db.prepare(
          "UPDATE collections SET face_count = face_count + 1, version = version + 1 WHERE id = ?",
        )
          .bind(collectionId),
      ]);
    } catch (e) {
      const had = idem && await this.getIdempotency(idem.key, Date.now());
      if (had) return had;
      throw e;
    }
    return (results[idemStmts.length].meta.changes ?? 0) > 0;
  }

  async getIdempotency(key: string, nowMs: number): Promise<IdempotencyRecord | null> {
    const r = await this.db.prepare(
      "SELECT key, fingerprint, status, body, expires_at FROM idempotency WHERE key = ? AND expires_at > ?",
    ).bind(key, nowMs).first<
      { key: string; fingerprint: string; status: number; body: string; expires_at: number }
    >();
    return r
      ? {
        key: r.key,
        fingerprint: r.fingerprint,
        status: Number(r.status),
        body: r.body,
        expiresAt: Number(r.expires_at),
      }
      : null;
  }

  async listFaces(
    collectionId: string,
    opts: { limit: number; cursor?: string | null },
  ): Promise<FacePage | null> {
    if (!(await this.getCollection(collectionId))) return null;
    const { results } = await this.db.prepare(
      "SELECT face_id, external_id, metadata, created_at FROM faces WHERE collection_id = ? AND face_id > ? " +
        "ORDER BY face_id LIMIT ?",
    ).bind(collectionId, opts.cursor ?? "", opts.limit + 1).all<
      { face_id: string; external_id: string | null; metadata: string | null; created_at: string }
    >();
    const page = results.slice(0, opts.limit).map((r) => ({
      faceId: r.face_id,
      externalId: r.external_id,
      metadata: parseJson(r.metadata),
      createdAt: r.created_at,
    }));
    return { faces: page, nextCursor: results.length > opts.limit ? page[page.length - 1].faceId : null };
  }

  async deleteFace(collectionId: string, faceId: string): Promise<boolean> {
    const [del] = await this.db.batch([
      this.db.prepare("DELETE FROM faces WHERE collection_id = ? AND face_id = ?").bind(collectionId, faceId),
      this.db.prepare(
        "UPDATE collections SET face_count = (SELECT COUNT(*) FROM faces WHERE collection_id = ?), " +
          "version = version + 1 WHERE id = ?",
      ).bind(collectionId, collectionId),
    ]);
    return (del.meta.changes ?? 0) > 0;
  }

  async loadEmbeddings(collectionId: string): Promise<EmbeddingMatrix | null> {
    const col = await this.getCollection(collectionId);
    if (!col) return null;
    const { results } = await this.db.prepare(
      "SELECT face_id, external_id, embedding FROM faces WHERE collection_id = ?",
    ).bind(collectionId).all<{ face_id: string; external_id: string | null; embedding: unknown }>();
    const dim = col.dim, data = new Int8Array(results.length * dim);
    results.forEach((r, i) => {
      const b = blobBytes(r.embedding);
      data.set(new Int8Array(b.buffer, b.byteOffset, dim), i * dim);
    });
    return {
      faceIds: results.map((r) => r.face_id),
      externalIds: results.map((r) => r.external_id),
      data,
      dim,
    };
  }
}
