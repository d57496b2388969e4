/**
 * Brute-force cosine search over a collection's int8 embeddings, with a per-isolate cache keyed on
 * the collection's version so that repeated searches do not reload the gallery from storage.
 */
import type { CollectionRecord, EmbeddingMatrix, GalleryStore } from "./store/types.ts";

/** One search hit. */
export interface Match {
  faceId: string;
  externalId: string | null;
  similarity: number;
}

interface Entry extends EmbeddingMatrix {
  version: number;
  createdAt: string;
  invNorm: Float32Array;
  bytes: number;
  /** Row of each faceId (rows 0..n-1 are live; `data`/`invNorm` may have spare capacity). */
  rows: Map<string, number>;
}

function invNormOf(v: Int8Array): number {
  let s = 0;
  for (let j = 0; j < v.length; j++) s += v[j] * v[j];
  return s > 0 ? 1 / Math.sqrt(s) : 0;
}

/** Cosine similarity of two equally long float vectors. */
export function cosine(a: Float32Array, b: Float32Array): number {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na > 0 && nb > 0 ? d / Math.sqrt(na * nb) : 0;
}

/** Top-k cosine search with a bounded in-memory cache of dequantisation-ready matrices. */
export class SearchIndex {
  readonly store: GalleryStore;
  readonly maxCacheBytes: number;
  #cache = new Map<string, Entry>();
  #bytes = 0;

  constructor(store: GalleryStore, maxCacheBytes = 64 * 2 ** 20) {
    this.store = store;
    this.maxCacheBytes = maxCacheBytes;
  }

  /** Drop a collection from the cache (after deleting it). */
  invalidate(id: string): void {
    const e = this.#cache.get(id);
    if (e) this.#bytes -= e.bytes;
    this.#cache.delete(id);
  }

  async #matrix(col: CollectionRecord): Promise<Entry | null> {
    const hit = this.#cache.get(col.id);
    if (hit && hit.version === col.version && hit.createdAt === col.createdAt) {
      // Refresh LRU position.
      this.#cache.delete(col.id);
      this.#cache.set(col.id, hit);
      return hit;
    }
    const m = await this.store.loadEmbeddings(col.id);
    if (!m) return null;
    const n = m.faceIds.length, dim = m.dim;
    const invNorm = new Float32Array(n);
    for (let i = 0; i < n; i++) invNorm[i] = invNormOf(m.data.subarray(i * dim, (i + 1) * dim));
    const bytes = m.data.byteLength + invNorm.byteLength + n * 120;
    const rows = new Map(m.faceIds.map((f, i) => [f, i]));
    const e: Entry = { ...m, version: col.version, createdAt: col.createdAt, invNorm, bytes, rows };
    this.invalidate(col.id);
    if (bytes <= this.maxCacheBytes) {
      this.#cache.set(col.id, e);
      this.#bytes += bytes;
      for (const [k, v] of this.#cache) {
        if (this.#bytes <= this.maxCacheBytes) break;
        this.#cache.delete(k);
        this.#bytes -= v.bytes;
      }
    }
    return e;
  }

  /**
   * Write-through after this process enrolled a face: append it to the cached matrix and count one
   * version, so the next search does not reload the gallery. Safe against other writers: the cache
   * is used only while its version equals the store's, and each write bumps the store's by one.
   */
  noteAdded(
    collectionId: string,
    face: { faceId: string; externalId: string | null; embedding: Int8Array },
  ): void {
    const e = this.#cache.get(collectionId);
    if (!e) return;
    e.version++;
    if (e.rows.has(face.faceId)) return; // a reload already picked it up
    const n = e.faceIds.length, dim = e.dim;
    if ((n + 1) * dim > e.data.length) {
      const cap = Math.max(16, 2 * (n + 1));
      const data = new Int8Array(cap * dim), inv = new Float32Array(cap);
      data.set(e.data.subarray(0, n * dim));
      inv.set(e.invNorm.subarray(0, n));
      this.#bytes += data.byteLength - e.data.byteLength + inv.byteLength - e.invNorm.byteLength;
      e.bytes += data.byteLength - e.data.byteLength + inv.byteLength - e.invNorm.byteLength;
      e.data = data;
      e.invNorm = inv;
    }
    e.data.set(face.embedding, n * dim);
    e.invNorm[n] = invNormOf(face.embedding);
    e.faceIds.push(face.faceId);
    e.externalIds.push(face.externalId);
    e.rows.set(face.faceId, n);
  }

  /** Write-through after this process deleted a face (see {@link noteAdded}). */
  noteDeleted(collectionId: string, faceId: string): void {
    const e = this.#cache.get(collectionId);
    if (!e) return;
    e.version++;
    const r = e.rows.get(faceId);
    if (r === undefined) return;
    const last = e.faceIds.length - 1, dim = e.dim;
    if (r !== last) {
      e.data.copyWithin(r * dim, last * dim, (last + 1) * dim);
      e.invNorm[r] = e.invNorm[last];
      e.faceIds[r] = e.faceIds[last];
      e.externalIds[r] = e.externalIds[last];
      e.rows.set(e.faceIds[r], r);
    }
    e.faceIds.pop();
    e.externalIds.pop();
    e.rows.delete(faceId);
  }

  /**
   * The `k` most similar faces with similarity ≥ `threshold`, best first. `query` should be unit
   * length (model output). Returns null if the collection vanished.
   */
  async search(
    col: CollectionRecord,
    query: Float32Array,
    k: number,
    threshold: number,
  ): Promise<{ matches: Match[]; searched: number } | null> {
    const m = await this.#matrix(col);
    if (!m) return null;
    return { matches: topK(m, m.invNorm, query, k, threshold), searched: m.faceIds.length };
  }
}

/** Score every row and keep the best `k` above `threshold` (insertion into a small sorted list). */
export function topK(
  m: EmbeddingMatrix,
  invNorm: Float32Array,
  q: Float32Array,
  k: number,
  threshold: number,
): Match[] {
  const { data, dim } = m;
  const n = m.faceIds.length;
  const idx: number[] = [], sc: number[] = [];
  for (let i = 0; i < n; i++) {
    let s = 0;
    const o = i * dim;
    for (let j = 0; j < dim; j++) s += data[o + j] * q[j];
    s *= invNorm[i];
    if (s < threshold || (sc.length === k && s <= sc[k - 1])) continue;
    let p = sc.length;
    while (p > 0 && sc[p - 1] < s) p--;
    sc.splice(p, 0, s);
    idx.splice(p, 0, i);
    if (sc.length > k) {
      sc.pop();
      idx.pop();
    }
  }
  return idx.map((i, r) => ({ faceId: m.faceIds[i], externalId: m.externalIds[i], similarity: sc[r] }));
}
