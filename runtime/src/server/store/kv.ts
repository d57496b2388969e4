/**
 * Deno KV gallery store: a local SQLite file under `deno task serve`, the same code on Deno Deploy's
 * distributed KV. Deno-only: imported by scripts/ and tests, never by the platform-neutral app.
 *
 * Layout (under `prefix`):
 *   [..., "col", id]               collection record (changes only on create/delete)
 *   [..., "cnt", id], [..., "ver", id]   Deno.KvU64 face count and version (updated with `sum`)
 *   [..., "face", id, gen, faceId] face record + int8 embedding
 *   [..., "idem", key]             idempotency record (written with the face; KV `expireIn` = its TTL)
 * Enrolment checks only the collection record's versionstamp, and counters use `sum`, so parallel
 * enrolments into one collection do not conflict with each other; a concurrent delete makes them fail
 * cleanly. `gen` (random per creation) keeps faces of a deleted-and-recreated collection apart while
 * the old ones are purged.
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

interface ColValue {
  id: string;
  model: string;
  dim: number;
  metadata: Record<string, unknown> | null;
  createdAt: string;
  gen: string;
}

interface FaceValue {
  faceId: string;
  externalId: string | null;
  metadata: Record<string, unknown> | null;
  createdAt: string;
  emb: Uint8Array;
}

const MINUS_ONE = (1n << 64n) - 1n; // KvU64 sum wraps modulo 2^64
const RETRIES = 20;

/** A {@link GalleryStore} on a Deno.Kv handle. */
export class KvStore implements GalleryStore {
  readonly kind = "deno-kv";
  readonly kv: Deno.Kv;
  readonly #p: Deno.KvKeyPart[];
  #owns: boolean;

  /** Use an open handle; `prefix` namespaces the keys (default ["repmlp"]). */
  constructor(kv: Deno.Kv, opts?: { prefix?: Deno.KvKeyPart[]; ownsHandle?: boolean }) {
    this.kv = kv;
    this.#p = opts?.prefix ?? ["repmlp"];
    this.#owns = opts?.ownsHandle ?? false;
  }

  /** Open (creating) a KV database at `path` (a file, or undefined for the default / Deploy KV). */
  static async open(path?: string, opts?: { prefix?: Deno.KvKeyPart[] }): Promise<KvStore> {
    return new KvStore(await Deno.openKv(path), { ...opts, ownsHandle: true });
  }

  #k(...parts: Deno.KvKeyPart[]): Deno.KvKey {
    return [...this.#p, ...parts];
  }

  async createCollection(
    c: NewCollection,
  ): Promise<{ created: boolean; collection: CollectionRecord }> {
    const colKey = this.#k("col", c.id);
    for (let i = 0; i < RETRIES; i++) {
      const value: ColValue = { ...c, gen: crypto.randomUUID() };
      const res = await this.kv.atomic()
        .check({ key: colKey, versionstamp: null })
        .set(colKey, value)
        .set(this.#k("cnt", c.id), new Deno.KvU64(0n))
        .set(this.#k("ver", c.id), new Deno.KvU64(0n))
        .commit();
      if (res.ok) return { created: true, collection: { ...c, faceCount: 0, version: 0 } };
      const existing = await this.getCollection(c.id);
      if (existing) return { created: false, collection: existing };
    }
    throw new Error(`createCollection(${c.id}): too much contention`);
  }

  async #col(id: string): Promise<Deno.KvEntryMaybe<ColValue>> {
    return await this.kv.get<ColValue>(this.#k("col", id));
  }

  async getCollection(id: string): Promise<CollectionRecord | null> {
    const [col, cnt, ver] = await this.kv.getMany<[ColValue, Deno.KvU64, Deno.KvU64]>([
      this.#k("col", id),
      this.#k("cnt", id),
      this.#k("ver", id),
    ]);
    if (!col.value) return null;
    const { gen: _gen, ...rest } = col.value;
    return { ...rest, faceCount: Number(cnt.value?.value ?? 0n), version: Number(ver.value?.value ?? 0n) };
  }

  async deleteCollection(id: string): Promise<boolean> {
    for (let i = 0; i < RETRIES; i++) {
      const col = await this.#col(id);
      if (!col.value) return false;
      const res = await this.kv.atomic()
        .check(col)
        .delete(col.key)
        .delete(this.#k("cnt", id))
        .delete(this.#k("ver", id))
        .commit();
      if (res.ok) {
        await this.#purge(this.#k("face", id, col.value.gen));
        return true;
      }
    }
    throw new Error(`deleteCollection(${id}): too much contention`);
  }

  /** Delete every key under a prefix, in bounded atomic batches. */
  async #purge(prefix: Deno.KvKey): Promise<void> {
    let batch: Deno.KvKey[] = [];
    const flush = async () => {
      const op = this.kv.atomic();
      for (const k of batch) op.delete(k);
      await op.commit();
      batch = [];
    };
    for await (const e of this.kv.list({ prefix })) {
      batch.push(e.key);
      if (batch.length >= 200) await flush();
    }
    if (batch.length) await flush();
  }

  async addFace(
    collectionId: string,
    face: NewFace,
    idem?: IdempotencyRecord,
  ): Promise<boolean | IdempotencyRecord> {
    for (let i = 0; i < RETRIES; i++) {
      const col = await this.#col(collectionId);
      if (!col.value) return false;
      const v: FaceValue = {
        faceId: face.faceId,
        externalId: face.externalId,
        metadata: face.metadata,
        createdAt: face.createdAt,
        emb: new Uint8Array(face.embedding.buffer.slice(
          face.embedding.byteOffset,
          face.embedding.byteOffset + face.embedding.byteLength,
        )),
      };
      const op = this.kv.atomic()
        .check(col)
        .set(this.#k("face", collectionId, col.value.gen, face.faceId), v)
        .sum(this.#k("cnt", collectionId), 1n)
        .sum(this.#k("ver", collectionId), 1n);
      if (idem) {
        // Expired records may linger until KV deletes them: check against the one read above.
        const cur = await this.kv.get<IdempotencyRecord>(this.#k("idem", idem.key));
        if (cur.value && cur.value.expiresAt > Date.now()) return cur.value;
        op.check(cur).set(this.#k("idem", idem.key), idem, {
          expireIn: Math.max(1, idem.expiresAt - Date.now()),
        });
      }
      if ((await op.commit()).ok) return true;
    }
    throw new Error(`addFace(${collectionId}): too much contention`);
  }

  async getIdempotency(key: string, nowMs: number): Promise<IdempotencyRecord | null> {
    const r = await this.kv.get<IdempotencyRecord>(this.#k("idem", key));
    return r.value && r.value.expiresAt > nowMs ? r.value : null;
  }

  async listFaces(
    collectionId: string,
    opts: { limit: number; cursor?: string | null },
  ): Promise<FacePage | null> {
    const col = await this.#col(collectionId);
    if (!col.value) return null;
    const it = this.kv.list<FaceValue>(
      { prefix: this.#k("face", collectionId, col.value.gen) },
      { limit: opts.limit + 1, cursor: opts.cursor || undefined },
    );
    const faces = [];
    let last = "";
    for await (const e of it) {
      if (faces.length === opts.limit) return { faces, nextCursor: last };
      const { faceId, externalId, metadata, createdAt } = e.value;
      faces.push({ faceId, externalId, metadata, createdAt });
      last = it.cursor;
    }
    return { faces, nextCursor: null };
  }

  async deleteFace(collectionId: string, faceId: string): Promise<boolean> {
    for (let i = 0; i < RETRIES; i++) {
      const col = await this.#col(collectionId);
      if (!col.value) return false;
      const key = this.#k("face", collectionId, col.value.gen, faceId);
      const f = await this.kv.get(key);
      if (f.versionstamp === null) return false;
      const res = await this.kv.atomic()
        .check(col)
        .check(f)
        .delete(key)
        .sum(this.#k("cnt", collectionId), MINUS_ONE)
        .sum(this.#k("ver", collectionId), 1n)
        .commit();
      if (res.ok) return true;
    }
    throw new Error(`deleteFace(${collectionId}): too much contention`);
  }

  async loadEmbeddings(collectionId: string): Promise<EmbeddingMatrix | null> {
    const col = await this.#col(collectionId);
    if (!col.value) return null;
    const dim = col.value.dim;
    const faceIds: string[] = [], externalIds: (string | null)[] = [], rows: Uint8Array[] = [];
    for await (
      const e of this.kv.list<FaceValue>({ prefix: this.#k("face", collectionId, col.value.gen) }, {
        batchSize: 500,
      })
    ) {
      faceIds.push(e.value.faceId);
      externalIds.push(e.value.externalId);
      rows.push(e.value.emb);
    }
    const data = new Int8Array(rows.length * dim);
    rows.forEach((r, i) => data.set(new Int8Array(r.buffer, r.byteOffset, dim), i * dim));
    return { faceIds, externalIds, data, dim };
  }

  close(): void {
    if (this.#owns) this.kv.close();
    this.#owns = false;
  }
}
