/**
 * `deno task serve` end to end: the real script in a subprocess, loading bundles through
 * weights/manifest.json onto the WASM runtime, with Deno KV under DATA_DIR.
 */
import assert from "node:assert/strict";
import { form, identityImage, toJpeg, writeTinyWeights } from "./api_testutil.ts";

const SERVE = new URL("../cli/serve.ts", import.meta.url).pathname;

interface Running {
  url: string;
  stderr: () => string;
  stop(signal?: Deno.Signal): Promise<{ code: number; stderr: string }>;
}

async function start(env: Record<string, string>): Promise<Running> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SERVE],
    env: { PORT: "0", HOST: "127.0.0.1", BACKEND: "wasm", ...env },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let err = "";
  let url = "";
  const drain = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      err += value;
    }
  })();
  const t0 = Date.now();
  while (!url) {
    const m = /listening on (http:\/\/\S+)/.exec(err);
    if (m) url = m[1];
    else {
      const st = await Promise.race([child.status, new Promise((r) => setTimeout(r, 50, null))]);
      if (st) {
        await drain;
        throw new Error(`serve exited: ${err}`);
      }
      if (Date.now() - t0 > 60_000) throw new Error(`serve did not start: ${err}`);
    }
  }
  return {
    url,
    stderr: () => err,
    async stop(signal: Deno.Signal = "SIGTERM") {
      child.kill(signal);
      const st = await child.status;
      await drain;
      return { code: st.code, stderr: err };
    },
  };
}

Deno.test("api serve: deno task serve loads the manifest, generates a key once, persists the gallery", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const weights = await Deno.makeTempDir({ dir });
    const manifest = await writeTinyWeights(weights);
    const env = { DATA_DIR: `${dir}/data`, WEIGHTS: manifest, API_KEYS: "" };
    const img = toJpeg(identityImage(4), 96, 96);

    const s1 = await start(env);
    const key = (await Deno.readTextFile(`${dir}/data/api-key`)).trim();
    assert.match(key, /^rk_[A-Za-z0-9_-]{32}$/);
    assert.ok(s1.stderr().includes(key), "the generated key is printed on first start");
    const auth = { Authorization: `Bearer ${key}` };
    const models = await (await fetch(`${s1.url}/v1/models`, { headers: auth })).json();
    assert.deepEqual(
      models.models.map((m: Record<string, unknown>) => [m.name, m.task, m.backend, m.dtype]),
      [["tiny-face", "face", "wasm", "fp32"], ["tiny-fmnist", "classifier", "wasm", "fp32"]],
    );
    assert.equal(models.models[0].threshold, 0.4);
    const page = await fetch(`${s1.url}/`);
    assert.match(page.headers.get("content-type") ?? "", /text\/html/);
    await page.body?.cancel();
    assert.equal((await fetch(`${s1.url}/v1/collections/e2e`, { method: "PUT", headers: auth })).status, 201);
    const enrol = await fetch(`${s1.url}/v1/collections/e2e/faces`, {
      method: "POST",
      headers: auth,
      body: form({ image: img }, { externalId: "alice" }),
    });
    assert.equal(enrol.status, 201);
    await enrol.body?.cancel();
    const r1 = await s1.stop();
    assert.equal(r1.code, 0);
    assert.match(r1.stderr, /serve: stopped/);
    assert.ok(!r1.stderr.includes('"key":"' + key));

    const s2 = await start(env);
    try {
      assert.ok(!s2.stderr().includes(key), "the key is not printed again");
      const search = await fetch(`${s2.url}/v1/collections/e2e/search`, {
        method: "POST",
        headers: auth,
        body: form({ image: img }),
      });
      const body = await search.json();
      assert.equal(search.status, 200, JSON.stringify(body));
      assert.equal(body.matches[0].externalId, "alice");
      assert.ok(Math.abs(body.matches[0].similarity - 1) < 0.01);
    } finally {
      await s2.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("api serve: kill -9 mid-burst, then retries with their Idempotency-Keys: every face enrolled exactly once", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const weights = await Deno.makeTempDir({ dir });
    const env = {
      DATA_DIR: `${dir}/data`,
      WEIGHTS: await writeTinyWeights(weights),
      API_KEYS: "crash-test-key-0123",
      // The test polls and bursts faster than the default per-key limit allows on a slow host.
      RATE_LIMIT_RPM: "0",
    };
    const auth = { Authorization: "Bearer crash-test-key-0123" };
    const N = 24;
    const imgs = Array.from({ length: N }, (_, i) => toJpeg(identityImage(i % 8, i), 96, 96));
    const enrol = async (url: string, i: number) => {
      const res = await fetch(`${url}/v1/collections/burst/faces`, {
        method: "POST",
        headers: { ...auth, "Idempotency-Key": `enrol-${i}` },
        body: form({ image: imgs[i] }, { externalId: `p${i}` }),
      });
      return { status: res.status, body: await res.json() };
    };
    const s1 = await start(env);
    assert.equal(
      (await fetch(`${s1.url}/v1/collections/burst`, { method: "PUT", headers: auth })).status,
      201,
    );
    const count = async (): Promise<number> => {
      const res = await fetch(`${s1.url}/v1/collections/burst`, { headers: auth });
      const body = await res.json();
      assert.equal(res.status, 200, JSON.stringify(body));
      return body.faceCount;
    };
    // A lost response, deterministically: the whole request goes out on a raw connection, the server enrols, and
    // the client hangs up without ever reading the answer (what a phone losing its network looks like).
    const lostReq = new Request(`${s1.url}/v1/collections/burst/faces`, {
      method: "POST",
      headers: { ...auth, "Idempotency-Key": "enrol-lost" },
      body: form({ image: imgs[0] }, { externalId: "lost" }),
    });
    const lostBody = new Uint8Array(await lostReq.arrayBuffer());
    const { hostname, port } = new URL(s1.url);
    const conn = await Deno.connect({ hostname, port: Number(port) });
    const head = `POST /v1/collections/burst/faces HTTP/1.1\r\nHost: ${hostname}:${port}\r\n` +
      `Authorization: ${auth.Authorization}\r\nIdempotency-Key: enrol-lost\r\n` +
      `Content-Type: ${lostReq.headers.get("content-type")}\r\nContent-Length: ${lostBody.length}\r\n\r\n`;
    const headBytes = new TextEncoder().encode(head);
    const all = new Uint8Array(headBytes.length + lostBody.length);
    all.set(headBytes);
    all.set(lostBody, headBytes.length);
    for (let off = 0; off < all.length;) off += await conn.write(all.subarray(off));
    for (let t = 0; (await count()) < 1 && t < 600; t++) await new Promise((r) => setTimeout(r, 50));
    conn.close();
    assert.equal(await count(), 1, "the server enrolled the face whose response was lost");
    const firstAnswers = new Map<number, string>();
    const burst = Array.from({ length: N }, (_, i) =>
      enrol(s1.url, i).then((r) => {
        if (r.status === 201) firstAnswers.set(i, r.body.faceId);
      }, () => {/* connection lost: the client does not know whether it was enrolled */}));
    while (firstAnswers.size < 3) await new Promise((r) => setTimeout(r, 5));
    await s1.stop("SIGKILL");
    await Promise.all(burst);

    const s2 = await start(env);
    try {
      const retries = [];
      for (let i = 0; i < N; i++) retries.push(await enrol(s2.url, i));
      for (const [i, r] of retries.entries()) {
        assert.equal(r.status, 201, JSON.stringify(r.body));
        if (firstAnswers.has(i)) {
          assert.equal(r.body.faceId, firstAnswers.get(i), `retry ${i} replays the first answer`);
        }
      }
      const again = await fetch(`${s2.url}/v1/collections/burst/faces`, {
        method: "POST",
        headers: { ...auth, "Idempotency-Key": "enrol-lost" },
        body: form({ image: imgs[0] }, { externalId: "lost" }),
      });
      assert.equal(again.status, 201);
      assert.equal(again.headers.get("idempotent-replayed"), "true");
      const lostId = (await again.json()).faceId;
      const list = await (await fetch(`${s2.url}/v1/collections/burst/faces?limit=1000`, { headers: auth }))
        .json();
      assert.equal(
        list.faces.length,
        N + 1,
        `faces: ${list.faces.map((f: { externalId: string }) => f.externalId)}`,
      );
      assert.deepEqual(
        new Set(list.faces.map((f: { faceId: string }) => f.faceId)),
        new Set([...retries.map((r) => r.body.faceId), lostId]),
      );
    } finally {
      await s2.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("api serve: a missing manifest fails with a message that says what to do", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", SERVE],
      env: { PORT: "0", DATA_DIR: dir, WEIGHTS: `${dir}/nope/manifest.json`, MODEL: "" },
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 1);
    const err = new TextDecoder().decode(out.stderr);
    assert.match(err, /manifest\.json not found/);
    assert.match(err, /MODEL=/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
