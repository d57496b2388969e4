/** In-process gallery store: tests, demos, single-isolate deployments. Lost on restart. */
import type {
  CollectionRecord,
  EmbeddingMatrix,
  FacePage,
  FaceRecord,
  GalleryStore,
  IdempotencyRecord,
  NewCollection,
  NewFace,
} from "./types.ts";

interface Col {
  rec: CollectionRecord;
  faces: Map<string, NewFace>;
}

/** A {@link GalleryStore} held in memory. Every method runs synchronously inside, so each is atomic. */
export class MemoryStore implements GalleryStore {
  readonly kind = "memory";
  #cols = new Map<string, Col>();
  #idem = new Map<string, IdempotencyRecord>();

  createCollection(
    c: NewCollection,
  ): Promise<{ created: boolean; collection: CollectionRecord }> {
    const had = this.#cols.get(c.id);
    if (had) return Promise.resolve({ created: false, collection: { ...had.rec } });
    const rec: CollectionRecord = { ...c, faceCount: 0, version: 0 };
    this.#cols.set(c.id, { rec, faces: new Map() });
    return Promise.resolve({ created: true, collection: { ...rec } });
  }

  /** A collection, or null if it does not exist. */
  getCollection(id: string): Promise<CollectionRecord | null> {
    const c = this.#cols.get(id);
    return Promise.resolve(c ? { ...c.rec } : null);
  }

  deleteCollection(id: string): Promise<boolean> {
    return Promise.resolve(this.#cols.delete(id));
  }

  addFace(
    collectionId: string,
    face: NewFace,
    idem?: IdempotencyRecord,
  ): Promise<boolean | IdempotencyRecord> {
    const c = this.#cols.get(collectionId);
    if (!c) return Promise.resolve(false);
    if (idem) {
      const had = this.#liveIdem(idem.key, Date.now());
      if (had) return Promise.resolve({ ...had });
      this.#idem.set(idem.key, { ...idem });
    }
    c.faces.set(face.faceId, { ...face, embedding: face.embedding.slice() });
    c.rec.faceCount = c.faces.size;
    c.rec.version++;
    return Promise.resolve(true);
  }

  listFaces(collectionId: string, opts: { limit: number; cursor?: string | null }): Promise<FacePage | null> {
    const c = this.#cols.get(collectionId);
    if (!c) return Promise.resolve(null);
    const ids = [...c.faces.keys()].filter((k) => !opts.cursor || k > opts.cursor).sort();
    const page = ids.slice(0, opts.limit);
    const faces: FaceRecord[] = page.map((k) => {
      const { faceId, externalId, metadata, createdAt } = c.faces.get(k)!;
      return { faceId, externalId, metadata, createdAt };
    });
    return Promise.resolve({ faces, nextCursor: ids.length > opts.limit ? page[page.length - 1] : null });
  }

  getIdempotency(key: string, nowMs: number): Promise<IdempotencyRecord | null> {
    const r = this.#liveIdem(key, nowMs);
    return Promise.resolve(r ? { ...r } : null);
  }

  #liveIdem(key: string, nowMs: number): IdempotencyRecord | undefined {
    // Sweep from the oldest insertion; with one TTL that is also the earliest expiry.
    for (const [k, r] of this.#idem) {
      if (r.expiresAt > nowMs) break;
      this.#idem.delete(k);
    }
    const r = this.#idem.get(key);
    return r && r.expiresAt > nowMs ? r : undefined;
  }

  deleteFace(collectionId: string, faceId: string): Promise<boolean> {
    const c = this.#cols.get(collectionId);
    if (!c || !c.faces.delete(faceId)) return Promise.resolve(false);
    c.rec.faceCount = c.faces.size;
    c.rec.version++;
    return Promise.resolve(true);
  }

  loadEmbeddings(collectionId: string): Promise<EmbeddingMatrix | null> {
    const c = this.#cols.get(collectionId);
    if (!c) return Promise.resolve(null);
    const dim = c.rec.dim, n = c.faces.size;
    const data = new Int8Array(n * dim), faceIds: string[] = [], externalIds: (string | null)[] = [];
    let i = 0;
    for (const f of c.faces.values()) {
      data.set(f.embedding, i++ * dim);
      faceIds.push(f.faceId);
      externalIds.push(f.externalId);
    }
    return Promise.resolve({ faceIds, externalIds, data, dim });
  }
}
