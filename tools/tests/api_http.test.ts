/**
 * The face API over real HTTP (`Deno.serve` on a free port) with real JPEG/PNG uploads and a small
 * real RepMLPNet model (reference forward, random weights folded to deploy).
 */
import assert from "node:assert/strict";
import { createApp } from "../../runtime/src/server/app.ts";
import { imageToTensor, templateFor } from "../../runtime/src/image/mod.ts";
import { MemoryStore } from "../../runtime/src/server/store/memory.ts";
import { KvStore } from "../../runtime/src/server/store/kv.ts";
import type { GalleryStore } from "../../runtime/src/server/store/types.ts";
import {
  AUTH,
  call,
  form,
  identityImage,
  KEY,
  pngBombHeader,
  serve,
  testFaceModel,
  toJpeg,
  toPng,
} from "./api_testutil.ts";

const S = 96;
const N_ID = 8;
// Enrolment photos (PNG) and second photos of the same identities (JPEG: noise + 1 px shift).
const enrolPng = Array.from({ length: N_ID }, (_, i) => toPng(identityImage(i), S, S));
const probeJpg = Array.from({ length: N_ID }, (_, i) => toJpeg(identityImage(i, 1), S, S, 90));

type Body = Record<string, unknown>;
const err = (b: Body) => (b.error as { code: string; message: string } | undefined);

function assertError(r: { status: number; body: Body }, status: number, code: string) {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.deepEqual(Object.keys(r.body), ["error"]);
  assert.deepEqual(Object.keys(r.body.error as Body).sort(), ["code", "message"]);
  assert.equal(err(r.body)?.code, code);
  assert.ok((err(r.body)?.message ?? "").length > 5);
}

const norm = (v: number[]) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));

Deno.test("api http: endpoints, contracts and error codes (memory store)", async (t) => {
  const srv = serve({ store: new MemoryStore() });
  const u = srv.url;
  const post = (path: string, body: BodyInit | Uint8Array, headers: HeadersInit = AUTH) =>
    call(u + path, { method: "POST", body: body as BodyInit, headers });
  try {
    await t.step("public: healthz, openapi.json, docs page without external assets, GET /", async () => {
      const h = await call(`${u}/healthz`);
      assert.equal(h.status, 200);
      assert.deepEqual(h.body, { status: "ok", models: 2, store: "memory" });
      const o = await call(`${u}/openapi.json`);
      assert.equal(o.status, 200);
      const paths = Object.keys(o.body.paths as Body).sort();
      assert.deepEqual(paths, [
        "/healthz",
        "/v1/classify",
        "/v1/collections/{id}",
        "/v1/collections/{id}/faces",
        "/v1/collections/{id}/faces/{faceId}",
        "/v1/collections/{id}/search",
        "/v1/faces/compare",
        "/v1/faces/detect",
        "/v1/faces/embed",
        "/v1/models",
      ]);
      const schemas = Object.keys((o.body.components as { schemas: Body }).schemas);
      for (const s of ["Error", "EnrolForm", "CompareForm", "Embedding", "Collection"]) {
        assert.ok(schemas.includes(s), s);
      }
      const docs = await fetch(`${u}/docs`);
      const html = await docs.text();
      assert.equal(docs.status, 200);
      assert.match(docs.headers.get("content-type") ?? "", /text\/html/);
      assert.ok(html.includes("/v1/collections/{id}/search"));
      assert.doesNotMatch(html, /(src|href)=["']?(https?:)?\/\//, "no external assets");
      const root = await call(`${u}/`);
      assert.equal(root.body.docs, "/docs");
    });

    await t.step("models lists name, task, dtype, backend, size, threshold", async () => {
      const r = await call(`${u}/v1/models`, { headers: AUTH });
      assert.equal(r.status, 200);
      const models = r.body.models as Body[];
      assert.deepEqual(models[0], {
        name: "tiny-face",
        dtype: "float32",
        backend: "reference",
        inputSize: [3, 32, 32],
        task: "face",
        default: true,
        dim: 32,
        threshold: 0.5,
      });
      assert.equal(models[1].task, "classifier");
      assert.equal((models[1].labels as string[]).length, 10);
    });

    let embA: number[] = [];
    await t.step(
      "embed: unit norm, deterministic, same via multipart and raw body, equals in-process",
      async () => {
        const r1 = await post("/v1/faces/embed", form({ image: probeJpg[0] }));
        assert.equal(r1.status, 200, JSON.stringify(r1.body));
        assert.equal(r1.body.model, "tiny-face");
        assert.equal(r1.body.dim, 32);
        embA = r1.body.embedding as number[];
        assert.equal(embA.length, 32);
        assert.ok(Math.abs(norm(embA) - 1) < 1e-5);
        const st = r1.headers.get("server-timing") ?? "";
        assert.match(st, /decode;dur=[\d.]+/);
        assert.match(st, /infer;dur=[\d.]+/);
        assert.ok((r1.headers.get("x-request-id") ?? "").length > 0);
        assert.equal(r1.headers.get("x-content-type-options"), "nosniff");
        const r2 = await post("/v1/faces/embed", probeJpg[0], { ...AUTH, "Content-Type": "image/jpeg" });
        assert.deepEqual(r2.body.embedding, embA);
        const r3 = await post("/v1/faces/embed", form({ image: probeJpg[0] }));
        assert.deepEqual(r3.body.embedding, embA);
        // In-process: the shared pipeline (decode → centre crop → normalise) → model.
        const m = testFaceModel();
        const x = await imageToTensor(probeJpg[0], { input: [3, 32, 32], mean: [0.5], std: [0.5] });
        const e = await m.embed(x, 1);
        assert.ok(embA.every((v, i) => Math.abs(v - e[i]) < 1e-6));
      },
    );

    await t.step("embed with landmarks aligns (different crop), still unit norm", async () => {
      // Landmarks where the 112-template would sit on this 96×96 image scaled ×0.6 around its centre.
      const lm = templateFor(96, 96).map(([x, y]) => [48 + (x - 48) * 0.6, 48 + (y - 48) * 0.6]);
      const r = await post(
        "/v1/faces/embed",
        form({ image: probeJpg[0] }, { landmarks: JSON.stringify(lm) }),
      );
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const e = r.body.embedding as number[];
      assert.ok(Math.abs(norm(e) - 1) < 1e-5);
      assert.notDeepEqual(e, embA);
      const flat = await post(
        "/v1/faces/embed",
        form({ image: probeJpg[0] }, { landmarks: JSON.stringify(lm.flat()) }),
      );
      assert.deepEqual(flat.body.embedding, e);
      assertError(
        await post("/v1/faces/embed", form({ image: probeJpg[0] }, { landmarks: "[[1,2],[3,4]]" })),
        400,
        "invalid_request",
      );
      assertError(
        await post("/v1/faces/embed", form({ image: probeJpg[0] }, { landmarks: "{oops" })),
        400,
        "invalid_request",
      );
    });

    await t.step("compare: (a, a) ≈ 1 and matches; same identity beats another identity", async () => {
      const same = await post("/v1/faces/compare", form({ source: probeJpg[1], target: probeJpg[1] }));
      assert.equal(same.status, 200, JSON.stringify(same.body));
      assert.ok(Math.abs((same.body.similarity as number) - 1) < 1e-6);
      assert.equal(same.body.match, true);
      assert.equal(same.body.threshold, 0.5);
      const pair = await post(
        "/v1/faces/compare",
        form({ source: enrolPng[1], target: probeJpg[1] }, { threshold: "0.9" }),
      );
      const other = await post(
        "/v1/faces/compare",
        form({ source: enrolPng[2], target: probeJpg[1] }, { threshold: "0.9" }),
      );
      assert.equal(pair.body.threshold, 0.9);
      assert.ok((pair.body.similarity as number) > (other.body.similarity as number));
      assertError(await post("/v1/faces/compare", form({ source: probeJpg[1] })), 400, "invalid_request");
      assertError(
        await post("/v1/faces/compare", probeJpg[1], { ...AUTH, "Content-Type": "image/jpeg" }),
        415,
        "unsupported_media_type",
      );
    });

    const faceIds: string[] = [];
    await t.step(
      "collections: create (idempotent), enrol N identities, search finds each first",
      async () => {
        const put = (id: string, body?: Body) =>
          call(`${u}/v1/collections/${id}`, {
            method: "PUT",
            headers: body ? { ...AUTH, "Content-Type": "application/json" } : AUTH,
            body: body ? JSON.stringify(body) : undefined,
          });
        const c1 = await put("staff", { metadata: { site: "hq" } });
        assert.equal(c1.status, 201, JSON.stringify(c1.body));
        assert.equal(c1.body.model, "tiny-face");
        assert.deepEqual(c1.body.metadata, { site: "hq" });
        assert.equal((await put("staff")).status, 200);
        assertError(await put("staff", { model: "nope" }), 400, "invalid_request");
        assertError(await put("bad%20id"), 400, "invalid_request");
        for (let i = 0; i < N_ID; i++) {
          const r = await post(
            "/v1/collections/staff/faces",
            form({ image: enrolPng[i] }, { externalId: `person-${i}`, metadata: JSON.stringify({ i }) }),
          );
          assert.equal(r.status, 201, JSON.stringify(r.body));
          assert.equal(r.body.externalId, `person-${i}`);
          faceIds.push(r.body.faceId as string);
        }
        const g = await call(`${u}/v1/collections/staff`, { headers: AUTH });
        assert.equal(g.body.faceCount, N_ID);
        for (let i = 0; i < N_ID; i++) {
          const s = await post(
            "/v1/collections/staff/search",
            form({ image: probeJpg[i] }, { k: "3", threshold: "-1" }),
          );
          assert.equal(s.status, 200, JSON.stringify(s.body));
          const matches = s.body.matches as { faceId: string; externalId: string; similarity: number }[];
          assert.equal(matches.length, 3);
          assert.equal(matches[0].externalId, `person-${i}`, `identity ${i}: ${JSON.stringify(matches)}`);
          assert.equal(matches[0].faceId, faceIds[i]);
          assert.ok(matches[0].similarity >= matches[1].similarity);
          assert.equal(s.body.searchedFaces, N_ID);
        }
        // Raw-body search with query parameters; a threshold of 0.999 leaves only near-duplicates.
        const raw = await post("/v1/collections/staff/search?k=5&threshold=0.999", enrolPng[3], {
          ...AUTH,
          "Content-Type": "image/png",
        });
        const rm = raw.body.matches as { externalId: string; similarity: number }[];
        assert.equal(rm[0].externalId, "person-3");
        assert.ok(rm.every((m) => m.similarity >= 0.999));
      },
    );

    await t.step("list faces pages through everything; deletes really delete", async () => {
      const got: string[] = [];
      let cursor: string | null = null;
      do {
        const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
        const r = await call(`${u}/v1/collections/staff/faces?limit=3${q}`, { headers: AUTH });
        assert.equal(r.status, 200);
        const faces = r.body.faces as Body[];
        assert.ok(faces.length <= 3);
        got.push(...faces.map((f) => f.faceId as string));
        cursor = r.body.nextCursor as string | null;
      } while (cursor);
      assert.deepEqual(got.sort(), [...faceIds].sort());

      const del = await call(`${u}/v1/collections/staff/faces/${faceIds[2]}`, {
        method: "DELETE",
        headers: AUTH,
      });
      assert.deepEqual(del.body, { faceId: faceIds[2], deleted: true });
      assertError(
        await call(`${u}/v1/collections/staff/faces/${faceIds[2]}`, { method: "DELETE", headers: AUTH }),
        404,
        "not_found",
      );
      const s = await post(
        "/v1/collections/staff/search",
        form({ image: probeJpg[2] }, { k: "100", threshold: "-1" }),
      );
      const ids = (s.body.matches as { faceId: string }[]).map((m) => m.faceId);
      assert.equal(ids.length, N_ID - 1);
      assert.ok(!ids.includes(faceIds[2]));
      assert.equal((await call(`${u}/v1/collections/staff`, { headers: AUTH })).body.faceCount, N_ID - 1);

      const dc = await call(`${u}/v1/collections/staff`, { method: "DELETE", headers: AUTH });
      assert.deepEqual(dc.body, { id: "staff", deleted: true });
      assertError(await call(`${u}/v1/collections/staff`, { headers: AUTH }), 404, "not_found");
      assertError(await post("/v1/collections/staff/search", form({ image: probeJpg[0] })), 404, "not_found");
      assertError(await call(`${u}/v1/collections/staff/faces`, { headers: AUTH }), 404, "not_found");
      assertError(
        await call(`${u}/v1/collections/staff`, { method: "DELETE", headers: AUTH }),
        404,
        "not_found",
      );
      // Re-created: empty.
      await call(`${u}/v1/collections/staff`, { method: "PUT", headers: AUTH });
      const s2 = await post(
        "/v1/collections/staff/search",
        form({ image: probeJpg[0] }, { threshold: "-1" }),
      );
      assert.deepEqual(s2.body.matches, []);
    });

    await t.step("every error code, with the documented body", async () => {
      const img = form({ image: probeJpg[0] });
      assertError(await call(`${u}/v1/faces/embed`, { method: "POST", body: img }), 401, "unauthorized");
      const noKey = await fetch(`${u}/v1/models`);
      await noKey.body?.cancel();
      assert.match(noKey.headers.get("www-authenticate") ?? "", /^Bearer/);
      assertError(
        await post("/v1/faces/embed", img, { Authorization: "Bearer wrong-key-123456" }),
        401,
        "unauthorized",
      );
      assertError(await post("/v1/faces/embed", img, { Authorization: `Basic ${KEY}` }), 401, "unauthorized");
      const garbage = crypto.getRandomValues(new Uint8Array(3000));
      assertError(await post("/v1/faces/embed", form({ image: garbage })), 400, "invalid_image");
      assertError(
        await post("/v1/faces/embed", probeJpg[0].slice(0, 400), { ...AUTH, "Content-Type": "image/jpeg" }),
        400,
        "invalid_image",
      );
      assertError(
        await post("/v1/faces/embed", "hello", { ...AUTH, "Content-Type": "text/plain" }),
        415,
        "unsupported_media_type",
      );
      assertError(
        await post("/v1/faces/embed", JSON.stringify({ image: "x" }), {
          ...AUTH,
          "Content-Type": "application/json",
        }),
        415,
        "unsupported_media_type",
      );
      const gif = new TextEncoder().encode("GIF89a\x10\x00\x10\x00\x00\x00\x00,\x00\x00\x00\x00");
      assertError(await post("/v1/faces/embed", form({ image: gif })), 415, "unsupported_media_type");
      const six = new Uint8Array(6 * 2 ** 20);
      six.set(probeJpg[0]);
      assertError(
        await post("/v1/faces/embed", six, { ...AUTH, "Content-Type": "image/jpeg" }),
        413,
        "payload_too_large",
      );
      // Same without Content-Length (chunked): counted while streaming.
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < 6; i++) c.enqueue(six.subarray(i * 2 ** 20, (i + 1) * 2 ** 20));
          c.close();
        },
      });
      assertError(
        await post("/v1/faces/embed", stream, { ...AUTH, "Content-Type": "image/jpeg" }),
        413,
        "payload_too_large",
      );
      const t0 = performance.now();
      assertError(
        await post("/v1/faces/embed", form({ image: pngBombHeader(100_000, 100_000) })),
        413,
        "image_too_large",
      );
      assert.ok(performance.now() - t0 < 10_000);
      assertError(await post("/v1/collections/nope/faces", form({ image: probeJpg[0] })), 404, "not_found");
      assertError(await post("/v1/collections/nope/search", form({ image: probeJpg[0] })), 404, "not_found");
      assertError(await call(`${u}/v1/collections/nope`, { headers: AUTH }), 404, "not_found");
      assertError(
        await post("/v1/collections/staff/faces", form({ image: probeJpg[0] }, { metadata: "{not json" })),
        400,
        "invalid_request",
      );
      assertError(
        await post("/v1/collections/staff/faces", form({ image: probeJpg[0] }, { metadata: "[1,2]" })),
        400,
        "invalid_request",
      );
      assertError(
        await post("/v1/collections/staff/search", form({ image: probeJpg[0] }, { k: "0" })),
        400,
        "invalid_request",
      );
      assertError(await post("/v1/faces/embed", form({}, { image: "not a file" })), 400, "invalid_request");
      assertError(
        await post("/v1/faces/embed", form({ image: probeJpg[0] }, { model: "nope" })),
        400,
        "invalid_request",
      );
      assertError(
        await call(`${u}/v1/collections/staff`, {
          method: "PUT",
          headers: { ...AUTH, "Content-Type": "application/json" },
          body: "{bad",
        }),
        400,
        "invalid_request",
      );
      assertError(
        await call(`${u}/v1/collections/staff`, {
          method: "PUT",
          headers: { ...AUTH, "Content-Type": "text/plain" },
          body: "x",
        }),
        415,
        "unsupported_media_type",
      );
      assertError(await call(`${u}/v1/nothing-here`, { headers: AUTH }), 404, "not_found");
      assertError(
        await call(`${u}/v1/collections/staff/faces?limit=5000`, { headers: AUTH }),
        400,
        "invalid_request",
      );
    });

    await t.step("classify: top-k labels with softmax probabilities", async () => {
      const grey = Uint8Array.from({ length: 28 * 28 }, (_, i) => (i * 7) % 256);
      const r = await post("/v1/classify", form({ image: toPng(grey, 28, 28, 1) }, { k: "10" }));
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const p = r.body.predictions as { label: string; index: number; probability: number }[];
      assert.equal(p.length, 10);
      assert.ok(Math.abs(p.reduce((a, x) => a + x.probability, 0) - 1) < 1e-6);
      assert.ok(p.every((x, i) => i === 0 || p[i - 1].probability >= x.probability));
      const r3 = await post("/v1/classify", toPng(grey, 28, 28, 1), { ...AUTH, "Content-Type": "image/png" });
      assert.equal((r3.body.predictions as unknown[]).length, 5);
      assert.deepEqual((r3.body.predictions as unknown[])[0], p[0]);
    });

    await t.step("logs: one JSON entry per request, never the key", () => {
      const text = JSON.stringify(srv.logs);
      assert.ok(!text.includes(KEY));
      assert.ok(!text.includes("wrong-key-123456"));
      const req = srv.logs.filter((l) => l.msg === "request");
      assert.ok(req.length > 40);
      assert.ok(req.every((l) => typeof l.reqId === "string" && typeof l.status === "number"));
      assert.ok(req.some((l) => l.status === 401 && l.code === "unauthorized" && l.key === undefined));
      assert.ok(req.some((l) => l.status === 200 && /^[0-9a-f]{8}$/.test(String(l.key))));
    });
  } finally {
    await srv.close();
  }
});

Deno.test("api http: rate limit answers 429 with Retry-After; CORS and secure headers", async () => {
  let now = 1_000_000;
  const srv = serve({
    store: new MemoryStore(),
    rateLimit: { requestsPerMinute: 60, burst: 2 },
    now: () => now,
    cors: { origins: ["https://app.example"] },
  });
  try {
    const get = () => call(`${srv.url}/v1/models`, { headers: AUTH });
    assert.equal((await get()).status, 200);
    assert.equal((await get()).status, 200);
    const r = await get();
    assertError(r, 429, "rate_limited");
    assert.equal(r.headers.get("retry-after"), "1");
    now += 1000;
    assert.equal((await get()).status, 200);
    const pre = await fetch(`${srv.url}/v1/faces/embed`, {
      method: "OPTIONS",
      headers: {
        Origin: "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
      },
    });
    await pre.body?.cancel();
    assert.equal(pre.headers.get("access-control-allow-origin"), "https://app.example");
    const other = await fetch(`${srv.url}/healthz`, { headers: { Origin: "https://evil.example" } });
    await other.body?.cancel();
    assert.equal(other.headers.get("access-control-allow-origin"), null);
    const h = await fetch(`${srv.url}/healthz`, { headers: { Origin: "https://app.example" } });
    await h.body?.cancel();
    assert.match(h.headers.get("access-control-expose-headers") ?? "", /Server-Timing/);
    assert.equal(h.headers.get("x-frame-options"), "SAMEORIGIN");
  } finally {
    await srv.close();
  }
});

Deno.test("api http: createApp refuses to start open; playground hook serves GET /", async () => {
  assert.throws(
    () => createApp({ faceModels: [], store: new MemoryStore(), apiKeys: [] }),
    /no API keys configured/,
  );
  assert.throws(
    () => createApp({ faceModels: [], store: new MemoryStore(), apiKeys: ["short"] }),
    /at least 8/,
  );
  const app = createApp({
    faceModels: [],
    store: new MemoryStore(),
    apiKeys: [KEY],
    playground: (c) => c.html("<p>playground</p>"),
    log: () => {},
  });
  const r = await app.request("/");
  assert.equal(await r.text(), "<p>playground</p>");
  const e = await app.request("/v1/faces/embed", {
    method: "POST",
    headers: { ...AUTH, "Content-Type": "image/png" },
    body: toPng(identityImage(0), S, S) as BodyInit,
  });
  assert.equal(e.status, 404);
  assert.equal(((await e.json()) as Body & { error: { code: string } }).error.code, "not_found");
});

for (const kind of ["memory", "deno-kv"] as const) {
  Deno.test(`api http: 200 concurrent enrolments lose none (${kind} store)`, async () => {
    const dir = kind === "deno-kv" ? await Deno.makeTempDir() : null;
    const store: GalleryStore = dir ? await KvStore.open(`${dir}/kv.sqlite3`) : new MemoryStore();
    const srv = serve({ store, rateLimit: false });
    try {
      const put = await call(`${srv.url}/v1/collections/crowd`, { method: "PUT", headers: AUTH });
      assert.equal(put.status, 201);
      const res = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          call(`${srv.url}/v1/collections/crowd/faces`, {
            method: "POST",
            headers: AUTH,
            body: form({ image: enrolPng[i % N_ID] }, { externalId: `e${i}` }),
          })),
      );
      assert.deepEqual(res.filter((r) => r.status !== 201).map((r) => r.body), []);
      const ids = new Set(res.map((r) => r.body.faceId));
      assert.equal(ids.size, 200);
      assert.equal((await call(`${srv.url}/v1/collections/crowd`, { headers: AUTH })).body.faceCount, 200);
      const listed = await call(`${srv.url}/v1/collections/crowd/faces?limit=1000`, { headers: AUTH });
      assert.deepEqual(new Set((listed.body.faces as Body[]).map((f) => f.faceId)), ids);
      if (kind === "deno-kv") {
        const bad = await call(`${srv.url}/v1/collections/crowd/faces?cursor=bogus`, { headers: AUTH });
        assertError(bad, 400, "invalid_request");
      }
    } finally {
      await srv.close();
      store.close?.();
      if (dir) await Deno.remove(dir, { recursive: true });
    }
  });
}
