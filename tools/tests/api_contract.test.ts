/**
 * HTTP contract fixes found by an adversarial run, each over real HTTP (`Deno.serve`): unsupported
 * methods, blank numeric fields, metadata limits in UTF-8 bytes, malformed framing, Server-Timing
 * for refused origins, and `Idempotency-Key` on enrolment.
 */
import assert from "node:assert/strict";
import { createApp } from "../../runtime/src/server/app.ts";
import { MemoryStore } from "../../runtime/src/server/store/memory.ts";
import { AUTH, call, form, identityImage, KEY, serve, testFaceModel, toPng } from "./api_testutil.ts";

type Body = Record<string, unknown>;
const code = (b: Body) => (b.error as { code?: string } | undefined)?.code;
const png = (id: number, variant = 0) => toPng(identityImage(id, variant), 96, 96);

function assertError(r: { status: number; body: Body }, status: number, c: string) {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.deepEqual(Object.keys(r.body), ["error"]);
  assert.equal(code(r.body), c);
}

/** Send raw bytes on a socket (framing fetch would refuse to produce); returns the status line. */
async function rawStatus(port: number, req: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(req));
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf);
    return new TextDecoder().decode(buf.subarray(0, n ?? 0)).split("\r\n")[0];
  } finally {
    conn.close();
  }
}

Deno.test("api contract: unsupported methods answer 405 JSON with Allow, with or without a key", async () => {
  const srv = serve({ store: new MemoryStore() });
  try {
    for (const method of ["PATCH", "PROPFIND"]) {
      for (const headers of [AUTH, {}]) {
        const r = await call(`${srv.url}/v1/collections/x`, {
          method,
          headers,
          body: method === "TRACE" ? null : "ab",
        });
        assertError(r, 405, "method_not_allowed");
        assert.equal(r.headers.get("allow"), "GET, HEAD, POST, PUT, DELETE, OPTIONS");
      }
    }
    // TRACE over a raw socket (fetch refuses the method), with and without a body.
    const port = Number(new URL(srv.url).port);
    for (const body of ["", "Content-Length: 2\r\n\r\nab"]) {
      const line = await rawStatus(
        port,
        `TRACE /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nConnection: close\r\n${
          body || "\r\n"
        }`,
      );
      assert.match(line, /^HTTP\/1.1 405/);
    }
    assert.ok(
      !srv.logs.some((l) => l.level === "error"),
      JSON.stringify(srv.logs.filter((l) => l.level === "error")),
    );
  } finally {
    await srv.close();
  }
});

Deno.test("api contract: a blank threshold means the model's default; a non-number is 400", async () => {
  const srv = serve({ store: new MemoryStore() });
  const post = (path: string, body: FormData) =>
    call(srv.url + path, { method: "POST", headers: AUTH, body });
  try {
    const model = testFaceModel();
    for (const blank of ["", "  "]) {
      const r = await post(
        "/v1/faces/compare",
        form({ source: png(1), target: png(1, 1) }, { threshold: blank }),
      );
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.threshold, model.threshold);
    }
    assert.equal((await call(`${srv.url}/v1/collections/c`, { method: "PUT", headers: AUTH })).status, 201);
    const s = await post("/v1/collections/c/search", form({ image: png(1) }, { threshold: "" }));
    assert.equal(s.status, 200, JSON.stringify(s.body));
    assert.equal(s.body.threshold, model.threshold);
    const q = await call(`${srv.url}/v1/collections/c/search?threshold=`, {
      method: "POST",
      headers: { ...AUTH, "content-type": "image/png" },
      body: png(1) as BodyInit,
    });
    assert.equal(q.body.threshold, model.threshold);
    assertError(
      await post("/v1/faces/compare", form({ source: png(1), target: png(2) }, { threshold: "abc" })),
      400,
      "invalid_request",
    );
    const zero = await post(
      "/v1/faces/compare",
      form({ source: png(1), target: png(2) }, { threshold: "0" }),
    );
    assert.equal(zero.body.threshold, 0);
  } finally {
    await srv.close();
  }
});

Deno.test("api contract: metadata limits count UTF-8 bytes (4096), not UTF-16 units", async () => {
  const srv = serve({ store: new MemoryStore() });
  try {
    const emoji = JSON.stringify({ n: "😀".repeat(1100) }); // 2,210 UTF-16 units, 4,410 bytes
    const ascii = JSON.stringify({ n: "a".repeat(4000) }); // 4,010 bytes
    const put = (metadata: string) =>
      call(`${srv.url}/v1/collections/m${metadata.length}`, {
        method: "PUT",
        headers: { ...AUTH, "content-type": "application/json" },
        body: `{"metadata": ${metadata}}`,
      });
    assertError(await put(emoji), 400, "invalid_request");
    assert.equal((await put(ascii)).status, 201);
    const enrol = (metadata: string) =>
      call(`${srv.url}/v1/collections/m${ascii.length}/faces`, {
        method: "POST",
        headers: AUTH,
        body: form({ image: png(3) }, { metadata }),
      });
    const bad = await enrol(emoji);
    assertError(bad, 400, "invalid_request");
    assert.match((bad.body.error as { message: string }).message, /4096 bytes/);
    assert.equal((await enrol(ascii)).status, 201);
  } finally {
    await srv.close();
  }
});

Deno.test("api contract: malformed Content-Length is a JSON 400 where the app sees it; the server refuses it on the wire", async () => {
  const app = createApp({
    faceModels: [testFaceModel()],
    store: new MemoryStore(),
    apiKeys: [KEY],
    log: () => {},
  });
  for (const len of ["-1", "1e3", "abc"]) {
    const res = await app.request("/v1/faces/embed", {
      method: "POST",
      headers: { ...AUTH, "content-type": "image/png", "content-length": len },
      body: new Uint8Array(8),
    });
    assert.equal(res.status, 400, len);
    assert.equal(res.headers.get("content-type"), "application/json");
    assert.equal(((await res.json()).error as { code: string }).code, "invalid_request");
  }
  // Over a socket, Deno's HTTP server answers these itself before any handler runs (docs/api.md).
  const srv = serve({ store: new MemoryStore() });
  try {
    const port = Number(new URL(srv.url).port);
    const a = `Authorization: Bearer ${KEY}\r\nConnection: close\r\n`;
    assert.match(
      await rawStatus(port, `POST /v1/faces/embed HTTP/1.1\r\nHost: x\r\n${a}Content-Length: -1\r\n\r\n`),
      / 4\d\d /,
    );
    assert.match(
      await rawStatus(port, `GET /v1/models HTTP/1.1\r\nHost: x\r\n${a}X-Big: ${"a".repeat(70_000)}\r\n\r\n`),
      / 4\d\d /,
    );
  } finally {
    await srv.close();
  }
});

Deno.test("api contract: Timing-Allow-Origin only for origins CORS admits", async () => {
  const srv = serve({ store: new MemoryStore(), cors: { origins: ["https://ok.example"] } });
  try {
    const get = (origin?: string) => call(`${srv.url}/healthz`, { headers: origin ? { origin } : {} });
    const ok = await get("https://ok.example");
    assert.equal(ok.headers.get("access-control-allow-origin"), "https://ok.example");
    assert.equal(ok.headers.get("timing-allow-origin"), "https://ok.example");
    const evil = await get("https://evil.example");
    assert.equal(evil.headers.get("access-control-allow-origin"), null);
    assert.equal(evil.headers.get("timing-allow-origin"), null);
    assert.ok(evil.headers.get("server-timing")); // same-origin readers still get it
    assert.equal((await get()).headers.get("timing-allow-origin"), null);
  } finally {
    await srv.close();
  }
  const any = serve({ store: new MemoryStore(), cors: { origins: "*" } });
  try {
    const r = await call(`${any.url}/healthz`, { headers: { origin: "https://x.example" } });
    assert.equal(r.headers.get("timing-allow-origin"), "https://x.example");
  } finally {
    await any.close();
  }
});

Deno.test("api contract: Idempotency-Key on enrolment replays the first response and never enrols twice", async () => {
  const KEY2 = "second-key-0123456789";
  const srv = serve({ store: new MemoryStore(), apiKeys: [KEY, KEY2] });
  const enrol = (idem: string | null, image: Uint8Array, fields: Record<string, string> = {}, key = KEY) =>
    call(`${srv.url}/v1/collections/g/faces`, {
      method: "POST",
      headers: { Authorization: `Bearer ${key}`, ...(idem === null ? {} : { "Idempotency-Key": idem }) },
      body: form({ image }, fields), // a fresh multipart boundary every time, as a real retry has
    });
  const count = async () =>
    (await call(`${srv.url}/v1/collections/g`, { headers: AUTH })).body.faceCount as number;
  try {
    await call(`${srv.url}/v1/collections/g`, { method: "PUT", headers: AUTH });
    const first = await enrol("k-1", png(4), { externalId: "ann" });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    assert.equal(first.headers.get("idempotent-replayed"), null);
    const again = await enrol("k-1", png(4), { externalId: "ann" });
    assert.equal(again.status, 201);
    assert.deepEqual(again.body, first.body);
    assert.equal(again.headers.get("idempotent-replayed"), "true");
    assert.equal(await count(), 1);

    assertError(await enrol("k-1", png(5), { externalId: "ann" }), 422, "idempotency_key_reused");
    assertError(await enrol("k-1", png(4), { externalId: "bob" }), 422, "idempotency_key_reused");
    assert.equal(await count(), 1);

    // Keys are per API key: another caller's "k-1" is its own enrolment.
    const other = await enrol("k-1", png(4), { externalId: "ann" }, KEY2);
    assert.equal(other.status, 201);
    assert.notEqual(other.body.faceId, first.body.faceId);
    assert.equal(await count(), 2);

    // A burst of retries racing each other: one face, one faceId for all.
    const burst = await Promise.all(Array.from({ length: 6 }, () => enrol("k-burst", png(6))));
    assert.ok(burst.every((r) => r.status === 201), JSON.stringify(burst.map((r) => r.body)));
    assert.equal(new Set(burst.map((r) => r.body.faceId)).size, 1);
    assert.equal(await count(), 3);

    // Without the header nothing changes: two posts, two faces.
    await enrol(null, png(7));
    await enrol(null, png(7));
    assert.equal(await count(), 5);

    assertError(await enrol("x".repeat(256), png(8)), 400, "invalid_request");
    assertError(await enrol("has space", png(8)), 400, "invalid_request");
    assert.equal(await count(), 5);
  } finally {
    await srv.close();
  }
});

Deno.test("api contract: an expired Idempotency-Key enrols again", async () => {
  const srv = serve({ store: new MemoryStore(), idempotencyTtlS: 0.05 });
  try {
    await call(`${srv.url}/v1/collections/t`, { method: "PUT", headers: AUTH });
    const post = () =>
      call(`${srv.url}/v1/collections/t/faces`, {
        method: "POST",
        headers: { ...AUTH, "Idempotency-Key": "k" },
        body: form({ image: png(9) }),
      });
    const a = await post();
    await new Promise((r) => setTimeout(r, 80));
    const b = await post();
    assert.equal(b.status, 201);
    assert.notEqual(a.body.faceId, b.body.faceId);
    assert.equal(b.headers.get("idempotent-replayed"), null);
  } finally {
    await srv.close();
  }
});
