/**
 * `deno task bench:search`: brute-force search over a 10k-face gallery, in process.
 * Reports per-search time with the matrix cached (the steady state), the cold load from Deno KV
 * (first search after a write or a restart), the int8 similarity error versus float32, and the
 * stored bytes per face.
 *
 *   deno task bench:search [--faces 10000] [--dims 128,512] [--searches 200]
 */
import { parseArgs } from "node:util";
import { rng } from "../../runtime/src/random.ts";
import { cosine, SearchIndex } from "../../runtime/src/server/search.ts";
import { KvStore } from "../../runtime/src/server/store/kv.ts";
import { MemoryStore } from "../../runtime/src/server/store/memory.ts";
import { type GalleryStore, newFaceId, quantize } from "../../runtime/src/server/store/types.ts";

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    faces: { type: "string", default: "10000" },
    dims: { type: "string", default: "128,512" },
    searches: { type: "string", default: "200" },
  },
});
const N = Math.min(100_000, Number(a.faces));
const S = Math.min(10_000, Number(a.searches));

function unitVectors(n: number, dim: number, seed: number): Float32Array[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => {
    const v = new Float32Array(dim);
    let s = 0;
    for (let i = 0; i < dim; i++) {
      v[i] = Math.sqrt(-2 * Math.log(r() || 1e-12)) * Math.cos(2 * Math.PI * r());
      s += v[i] * v[i];
    }
    return v.map((x) => x / Math.sqrt(s));
  });
}

async function fill(store: GalleryStore, vecs: Float32Array[], dim: number) {
  await store.createCollection({
    id: "bench",
    model: "m",
    dim,
    metadata: null,
    createdAt: new Date().toISOString(),
  });
  const now = new Date().toISOString();
  for (let i = 0; i < vecs.length; i += 100) {
    await Promise.all(
      vecs.slice(i, i + 100).map((v, j) =>
        store.addFace("bench", {
          faceId: newFaceId(),
          externalId: `p${i + j}`,
          metadata: null,
          createdAt: now,
          embedding: quantize(v),
        })
      ),
    );
  }
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

console.log(
  `| dim | faces | search, cached (median) | cold load + search, Deno KV | int8 cosine error (max) | bytes/face (embedding) |`,
);
console.log(`|---|---|---|---|---|---|`);
for (const dim of a.dims!.split(",").map(Number)) {
  const gallery = unitVectors(N, dim, 1);
  const queries = unitVectors(S, dim, 2);
  // Memory store: steady-state search cost.
  const mem = new MemoryStore();
  await fill(mem, gallery, dim);
  const index = new SearchIndex(mem);
  const col = (await mem.getCollection("bench"))!;
  await index.search(col, queries[0], 5, -1);
  const times: number[] = [];
  for (const q of queries) {
    const t = performance.now();
    await index.search(col, q, 5, -1);
    times.push(performance.now() - t);
  }
  // int8 error on random pairs.
  let maxErr = 0;
  for (let i = 0; i < 2000; i++) {
    const g = gallery[i % N], q = queries[i % S];
    const exact = cosine(g, q);
    const qi = quantize(g);
    const approx = cosine(Float32Array.from(qi), q);
    maxErr = Math.max(maxErr, Math.abs(exact - approx));
  }
  // Deno KV: cold load of the whole gallery (what the first search after a write pays).
  const dir = await Deno.makeTempDir();
  const kv = await KvStore.open(`${dir}/kv.sqlite3`);
  await fill(kv, gallery, dim);
  const kcol = (await kv.getCollection("bench"))!;
  const cold: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t = performance.now();
    await new SearchIndex(kv).search(kcol, queries[r], 5, -1);
    cold.push(performance.now() - t);
  }
  kv.close();
  await Deno.remove(dir, { recursive: true });
  console.log(
    `| ${dim} | ${N} | ${median(times).toFixed(2)} ms | ${median(cold).toFixed(0)} ms | ${
      maxErr.toFixed(4)
    } | ${dim} |`,
  );
}
