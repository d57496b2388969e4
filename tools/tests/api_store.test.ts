/**
 * One conformance suite run against every gallery store: in-memory, Deno KV (temp file) and D1
 * (miniflare's D1, i.e. SQLite inside workerd, with every file of migrations/ applied in order).
 */
import assert from "node:assert/strict";
import { Miniflare } from "miniflare";
import { KvStore } from "../../runtime/src/server/store/kv.ts";
import { MemoryStore } from "../../runtime/src/server/store/memory.ts";
import { type GalleryStore, newFaceId, quantize } from "../../runtime/src/server/store/types.ts";
import { SearchIndex, topK } from "../../runtime/src/server/search.ts";
import { rng } from "../../runtime/src/random.ts";

const DIM = 16;

function unit(seed: number): Float32Array {
  const r = rng(seed), v = new Float32Array(DIM);
  let s = 0;
  for (let i = 0; i < DIM; i++) (v[i] = r() - 0.5), (s += v[i] * v[i]);
  return v.map((x) => x / Math.sqrt(s));
}

function face(seed: number, externalId: string | null = `p${seed}`) {
  return {
    faceId: newFaceId(),
    externalId,
    metadata: { seed },
    createdAt: new Date().toISOString(),
    embedding: quantize(unit(seed)),
  };
}

const newCol = (id: string) => ({
  id,
  model: "m",
  dim: DIM,
  metadata: { team: "x" },
  createdAt: new Date().toISOString(),
});

async function conformance(t: Deno.TestContext, store: GalleryStore) {
  await t.step("create is idempotent, get returns the record", async () => {
    const a = await store.createCollection(newCol("c1"));
    assert.equal(a.created, true);
    assert.deepEqual(
      { ...a.collection },
      { ...newCol("c1"), createdAt: a.collection.createdAt, faceCount: 0, version: 0 },
    );
    const b = await store.createCollection({ ...newCol("c1"), model: "other" });
    assert.equal(b.created, false);
    assert.equal(b.collection.model, "m");
    assert.equal((await store.getCollection("c1"))?.faceCount, 0);
    assert.equal(await store.getCollection("nope"), null);
  });

  await t.step("add, list with paging, load, delete face", async () => {
    const faces = Array.from({ length: 7 }, (_, i) => face(i));
    for (const f of faces) assert.equal(await store.addFace("c1", f), true);
    assert.equal(await store.addFace("nope", face(99)), false);
    const col = await store.getCollection("c1");
    assert.equal(col?.faceCount, 7);
    assert.equal(col?.version, 7);
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 10; pages++) {
      const page = await store.listFaces("c1", { limit: 3, cursor });
      assert.ok(page);
      seen.push(...page.faces.map((f) => f.faceId));
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    assert.deepEqual(seen, faces.map((f) => f.faceId).sort());
    const p0 = await store.listFaces("c1", { limit: 100 });
    assert.deepEqual(p0?.faces.find((f) => f.faceId === faces[2].faceId), {
      faceId: faces[2].faceId,
      externalId: "p2",
      metadata: { seed: 2 },
      createdAt: faces[2].createdAt,
    });
    assert.equal(await store.listFaces("nope", { limit: 5 }), null);

    const m = await store.loadEmbeddings("c1");
    assert.ok(m);
    assert.equal(m.faceIds.length, 7);
    const i3 = m.faceIds.indexOf(faces[3].faceId);
    assert.deepEqual([...m.data.subarray(i3 * DIM, (i3 + 1) * DIM)], [...faces[3].embedding]);
    assert.equal(m.externalIds[i3], "p3");

    assert.equal(await store.deleteFace("c1", faces[3].faceId), true);
    assert.equal(await store.deleteFace("c1", faces[3].faceId), false);
    assert.equal(await store.deleteFace("nope", faces[4].faceId), false);
    const after = await store.getCollection("c1");
    assert.equal(after?.faceCount, 6);
    assert.ok(after!.version > col!.version);
    assert.ok(!(await store.loadEmbeddings("c1"))!.faceIds.includes(faces[3].faceId));
  });

  await t.step("deleting a collection deletes its faces; re-creating starts empty", async () => {
    assert.equal(await store.deleteCollection("c1"), true);
    assert.equal(await store.deleteCollection("c1"), false);
    assert.equal(await store.getCollection("c1"), null);
    assert.equal(await store.loadEmbeddings("c1"), null);
    await store.createCollection(newCol("c1"));
    assert.equal((await store.getCollection("c1"))?.faceCount, 0);
    assert.deepEqual((await store.listFaces("c1", { limit: 10 }))?.faces, []);
    assert.equal((await store.loadEmbeddings("c1"))?.faceIds.length, 0);
  });

  await t.step("200 concurrent enrolments lose none", async () => {
    await store.createCollection(newCol("busy"));
    const faces = Array.from({ length: 200 }, (_, i) => face(1000 + i));
    const ok = await Promise.all(faces.map((f) => store.addFace("busy", f)));
    assert.ok(ok.every(Boolean));
    const col = await store.getCollection("busy");
    assert.equal(col?.faceCount, 200);
    assert.equal(col?.version, 200);
    const m = await store.loadEmbeddings("busy");
    assert.deepEqual(new Set(m!.faceIds), new Set(faces.map((f) => f.faceId)));
  });

  await t.step("search: the enrolled vector ranks first; cache follows writes", async () => {
    const index = new SearchIndex(store);
    const col = (await store.getCollection("busy"))!;
    const r = await index.search(col, unit(1042), 3, -1);
    assert.equal(r?.matches[0].externalId, "p1042");
    assert.ok(Math.abs(r!.matches[0].similarity - 1) < 5e-3, `int8 cosine ${r!.matches[0].similarity}`);
    assert.equal(r?.searched, 200);
    const extra = face(77, "late");
    await store.addFace("busy", extra);
    const r2 = await index.search((await store.getCollection("busy"))!, unit(77), 1, -1);
    assert.equal(r2?.matches[0].faceId, extra.faceId);
    assert.equal(r2?.searched, 201);
  });

  await t.step(
    "idempotency: the record is written with the face; a second key holder writes nothing",
    async () => {
      await store.createCollection(newCol("idem"));
      const rec = (key: string, fp: string, ttlMs = 60_000) => ({
        key,
        fingerprint: fp,
        status: 201,
        body: JSON.stringify({ fp }),
        expiresAt: Date.now() + ttlMs,
      });
      assert.equal(await store.getIdempotency("k1", Date.now()), null);
      const r1 = rec("k1", "a");
      assert.equal(await store.addFace("idem", face(1), r1), true);
      assert.deepEqual(await store.getIdempotency("k1", Date.now()), r1);
      // Concurrent retries with one key: exactly one face, the others get the winner's record.
      const racers = Array.from(
        { length: 8 },
        (_, i) => store.addFace("idem", face(10 + i), rec("k2", `r${i}`)),
      );
      const out = await Promise.all(racers);
      assert.equal(
        out.filter((x) => x === true).length,
        1,
        JSON.stringify(out),
      );
      const winner = out.indexOf(true);
      for (const x of out) {
        if (x !== true) {
          assert.equal((x as { fingerprint: string }).fingerprint, `r${winner}`);
        }
      }
      assert.equal((await store.getCollection("idem"))?.faceCount, 2);
      // No record for a collection that does not exist (the enrolment did not happen).
      assert.equal(await store.addFace("nope", face(30), rec("k3", "x")), false);
      assert.equal(await store.getIdempotency("k3", Date.now()), null);
      // Expired records are not returned and the key can be used again.
      assert.equal(await store.addFace("idem", face(31), rec("k4", "old", 1)), true);
      await new Promise((r) => setTimeout(r, 10));
      assert.equal(await store.getIdempotency("k4", Date.now()), null);
      assert.equal(await store.addFace("idem", face(32), rec("k4", "new")), true);
      assert.equal((await store.getIdempotency("k4", Date.now()))?.fingerprint, "new");
      assert.equal((await store.getCollection("idem"))?.faceCount, 4);
    },
  );
}

Deno.test("api store: memory", async (t) => {
  await conformance(t, new MemoryStore());
});

Deno.test("api store: Deno KV (temp file)", async (t) => {
  const dir = await Deno.makeTempDir();
  const store = await KvStore.open(`${dir}/kv.sqlite3`);
  try {
    await conformance(t, store);
    await t.step("data survives reopening the file", async () => {
      store.close();
      const again = await KvStore.open(`${dir}/kv.sqlite3`);
      assert.equal((await again.getCollection("busy"))?.faceCount, 201);
      again.close();
    });
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * The D1 adapter runs inside workerd (miniflare) against a real D1 binding; the test talks to it
 * through a tiny RPC worker. (Miniflare's Node-side D1 proxy is not used: it fails under
 * concurrent calls, which is exactly what this suite exercises.)
 */
const RPC_WORKER = `
import { D1Store } from "./d1.js";
export default {
  async fetch(req, env) {
    const { method, args } = await req.json();
    if (method === "migrate") {
      for (const stmt of args[0]) await env.DB.prepare(stmt).run();
      return Response.json(null);
    }
    if (method === "addFace") args[1].embedding = Int8Array.from(args[1].embedding);
    try {
      const r = await new D1Store(env.DB)[method](...args);
      return Response.json(r && r.data instanceof Int8Array ? { ...r, data: Array.from(r.data) } : r ?? null);
    } catch (e) {
      return Response.json({ error: String(e && e.stack || e) }, { status: 500 });
    }
  },
};`;

/** A GalleryStore whose every call runs `D1Store` inside the worker. */
function remoteD1(mf: Miniflare): GalleryStore & { migrate(sql: string[]): Promise<void> } {
  const rpc = async (method: string, ...args: unknown[]) => {
    const res = await mf.dispatchFetch("http://d1.test/", {
      method: "POST",
      body: JSON.stringify({ method, args }),
    });
    const body = await res.json() as Record<string, unknown> | null;
    if (res.status !== 200) throw new Error(`worker: ${body?.error}`);
    return body as never;
  };
  return {
    kind: "d1",
    migrate: (sql) => rpc("migrate", sql),
    createCollection: (c) => rpc("createCollection", c),
    getCollection: (id) => rpc("getCollection", id),
    deleteCollection: (id) => rpc("deleteCollection", id),
    addFace: (id, f, idem) => rpc("addFace", id, { ...f, embedding: Array.from(f.embedding) }, idem),
    getIdempotency: (k, now) => rpc("getIdempotency", k, now),
    listFaces: (id, o) => rpc("listFaces", id, o),
    deleteFace: (id, f) => rpc("deleteFace", id, f),
    loadEmbeddings: async (id) => {
      const m = await rpc("loadEmbeddings", id) as { data: number[] } | null;
      return m ? { ...m, data: Int8Array.from(m.data) } as never : null;
    },
  };
}

Deno.test("api store: D1 (adapter inside workerd via miniflare)", async (t) => {
  const { transform, stop } = await import("esbuild");
  const d1js = await transform(
    await Deno.readTextFile(new URL("../../runtime/src/server/store/d1.ts", import.meta.url)),
    { loader: "ts", format: "esm", target: "es2022" },
  );
  stop();
  const mf = new Miniflare({
    modules: [
      { type: "ESModule", path: "worker.js", contents: RPC_WORKER },
      { type: "ESModule", path: "d1.js", contents: d1js.code },
    ],
    compatibilityDate: "2025-01-01",
    d1Databases: { DB: "gallery" },
  });
  try {
    const store = remoteD1(mf);
    const dir = new URL("../../runtime/adapter/cloudflare/migrations/", import.meta.url);
    const files = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".sql")).sort();
    assert.ok(files.length >= 2, `migrations: ${files}`);
    for (const f of files) {
      const sql = await Deno.readTextFile(new URL(f, dir));
      await store.migrate(sql.replace(/--.*$/gm, "").split(";").map((x) => x.trim()).filter(Boolean));
    }
    await conformance(t, store);
  } finally {
    await mf.dispose();
  }
});

Deno.test("api store: topK keeps the best k above the threshold, in order", () => {
  const n = 50, dim = 4, r = rng(3);
  const data = new Int8Array(n * dim).map(() => Math.round((r() - 0.5) * 254));
  const m = { faceIds: [...Array(n).keys()].map(String), externalIds: Array(n).fill(null), data, dim };
  const invNorm = new Float32Array(n).map((_, i) => {
    let s = 0;
    for (let j = 0; j < dim; j++) s += data[i * dim + j] ** 2;
    return 1 / Math.sqrt(s);
  });
  const q = new Float32Array([0.5, -0.5, 0.5, 0.5]);
  const all = [...Array(n).keys()].map((i) => {
    let s = 0;
    for (let j = 0; j < dim; j++) s += data[i * dim + j] * q[j];
    return { i, s: s * invNorm[i] };
  }).sort((a, b) => b.s - a.s);
  const got = topK(m, invNorm, q, 5, -1);
  assert.deepEqual(got.map((g) => g.faceId), all.slice(0, 5).map((a) => String(a.i)));
  const thr = all[2].s - 1e-6;
  assert.equal(topK(m, invNorm, q, 10, thr).length, 3);
});

Deno.test("api store: search cache write-through stays equal to a fresh load, and reloads on foreign writes", async () => {
  const mem = new MemoryStore();
  let loads = 0;
  const counting: GalleryStore = Object.assign(Object.create(mem), {
    loadEmbeddings: (id: string) => (loads++, mem.loadEmbeddings(id)),
  });
  await mem.createCollection(newCol("w"));
  const faces = Array.from({ length: 20 }, (_, i) => face(i));
  for (const f of faces.slice(0, 10)) await mem.addFace("w", f);
  const index = new SearchIndex(counting);
  const search = async (ix: SearchIndex, seed: number) =>
    (await ix.search((await mem.getCollection("w"))!, unit(seed), 50, -1))!;
  await search(index, 0);
  assert.equal(loads, 1);
  // Local writes (as the app does them): store first, then note.
  for (const f of faces.slice(10)) {
    await mem.addFace("w", f);
    index.noteAdded("w", f);
  }
  for (const f of [faces[0], faces[13], faces[19]]) {
    await mem.deleteFace("w", f.faceId);
    index.noteDeleted("w", f.faceId);
  }
  for (const seed of [1, 5, 15]) {
    const got = await search(index, seed);
    const fresh = await search(new SearchIndex(mem), seed);
    assert.deepEqual(got, fresh);
  }
  assert.equal(loads, 1, "no reload after local writes");
  // A write the index was not told about (another isolate) forces a reload.
  await mem.addFace("w", face(99));
  const r = await search(index, 99);
  assert.equal(loads, 2);
  assert.equal(r.searched, 18);
  assert.equal(r.matches[0].externalId, "p99");
});
