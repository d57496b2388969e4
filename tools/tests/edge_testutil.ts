/**
 * Helpers for the edge tests: the models to build with (what `deno task serve` serves, or a tiny
 * random-weight bundle when the repository ships no manifest yet), the in-process app as the
 * reference, and one API scenario run against a real server.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { recordOf } from "../../runtime/src/convert.ts";
import { foldStateDict } from "../../runtime/src/fold.ts";
import { type BundleDType, writeBundle } from "../../runtime/src/io/bundle.ts";
import { randomStateDict } from "../../runtime/src/random.ts";
import { createApp } from "../../runtime/src/server/app.ts";
import { servedModelFromBundle } from "../../runtime/src/server/bundles.ts";
import { chooseModels, type ResolvedModel } from "../../runtime/src/server/manifest.ts";
import type { FaceModel } from "../../runtime/src/server/served_model.ts";
import { MemoryStore } from "../../runtime/src/server/store/memory.ts";
import { repoPath } from "../build/bundle_js.ts";
import { identityImage, tinyDescs, toJpeg } from "./api_testutil.ts";

/** API key the edge servers are started with. */
export const EDGE_KEY = "edge-test-key-0123456789";
const AUTH = { Authorization: `Bearer ${EDGE_KEY}` };

/** A tiny RepMLPNet face-embedding bundle (3×32×32 → 32), random weights folded to deploy mode. */
export function tinyFaceBundle(dtype: BundleDType = "fp32", seed = 1): Promise<Uint8Array> {
  const desc = tinyDescs().face;
  return writeBundle({
    model: recordOf(desc),
    tensors: foldStateDict(desc, randomStateDict(desc, "train", seed)),
    dtype,
    meta: { threshold: 0.5, preprocess: { input: [3, 32, 32], mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] } },
  });
}

/** The repository's weights manifest. */
export const DEFAULT_MANIFEST = repoPath("weights/manifest.json");

/**
 * The models to build with: what `deno task serve` loads by default (the manifest's defaults, int8),
 * or a tiny random face bundle written under `tmp` while the repository has no weights/manifest.json.
 */
export async function edgeTestModels(tmp: string): Promise<{ models: ResolvedModel[]; shipped: boolean }> {
  try {
    return { models: await chooseModels({ manifestPath: DEFAULT_MANIFEST }), shipped: true };
  } catch { /* no manifest or no face model in it */ }
  const path = join(tmp, "tiny-face.safetensors");
  await Deno.writeFile(path, await tinyFaceBundle());
  return { models: [{ entry: { name: "tiny-face", task: "face" }, path, variants: [] }], shipped: false };
}

/** Test images: JPEGs of synthetic identities. */
export function testImages(n = 3): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => toJpeg(identityImage(40 + i, 0, 112), 112, 112));
}

function form(img: Uint8Array, fields: Record<string, string> = {}): FormData {
  const f = new FormData();
  f.append("image", new Blob([img as BlobPart], { type: "image/jpeg" }), "face.jpg");
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  return f;
}

async function json(res: Response): Promise<Record<string, unknown>> {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    return { _text: text };
  }
}

/**
 * The in-process app as `deno task serve` runs it (same loader, ORT wasm backend, memory store) on
 * the given bundle: embeddings of `images` through `app.fetch`, no network.
 */
export async function inProcessEmbeddings(model: ResolvedModel, images: Uint8Array[]): Promise<number[][]> {
  const bytes = await Deno.readFile(model.path);
  const m = await servedModelFromBundle(bytes, model.entry, { backend: "wasm", log: () => {} });
  try {
    const app = createApp({
      faceModels: [m.model as FaceModel],
      store: new MemoryStore(),
      apiKeys: [EDGE_KEY],
      log: () => {},
      rateLimit: false,
    });
    const out: number[][] = [];
    for (const img of images) {
      const r = await app.fetch(
        new Request("http://local/v1/faces/embed", { method: "POST", headers: AUTH, body: form(img) }),
      );
      const b = await json(r);
      assert.equal(r.status, 200, JSON.stringify(b));
      out.push(b.embedding as number[]);
    }
    return out;
  } finally {
    await m.session.dispose();
  }
}

/** Largest |a_i − b_i| over two lists of vectors. */
export function maxAbsDiff(a: number[][], b: number[][]): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    assert.equal(a[i].length, b[i].length);
    for (let j = 0; j < a[i].length; j++) d = Math.max(d, Math.abs(a[i][j] - b[i][j]));
  }
  return d;
}

/**
 * Drive a running edge server: /healthz, /v1/faces/embed for every image, then a collection:
 * create, enrol every image, search with image 0 (must find its own face first, similarity ≈ 1),
 * list, delete. Returns the embeddings and the /healthz body.
 */
export async function exerciseApi(
  url: string,
  images: Uint8Array[],
  expect: { store: string; classifier?: boolean },
): Promise<{ embeddings: number[][]; health: Record<string, unknown> }> {
  const h = await fetch(`${url}/healthz`);
  const health = await json(h);
  assert.equal(h.status, 200, JSON.stringify(health));
  assert.equal(health.status, "ok");
  assert.equal(health.store, expect.store);

  const unauth = await fetch(`${url}/v1/faces/embed`, { method: "POST", body: form(images[0]) });
  assert.equal(unauth.status, 401);
  await unauth.body?.cancel();

  const embeddings: number[][] = [];
  for (const img of images) {
    const r = await fetch(`${url}/v1/faces/embed`, { method: "POST", headers: AUTH, body: form(img) });
    const b = await json(r);
    assert.equal(r.status, 200, JSON.stringify(b));
    const e = b.embedding as number[];
    assert.equal(e.length, b.dim);
    const norm = Math.hypot(...e);
    assert.ok(Math.abs(norm - 1) < 1e-4, `embedding norm ${norm}`);
    embeddings.push(e);
  }

  const col = `edge-${crypto.randomUUID().slice(0, 8)}`;
  const put = await fetch(`${url}/v1/collections/${col}`, {
    method: "PUT",
    headers: { ...AUTH, "Content-Type": "application/json" },
    body: JSON.stringify({ metadata: { test: "edge" } }),
  });
  assert.equal(put.status, 201, JSON.stringify(await json(put)));
  const faceIds: string[] = [];
  for (const [i, img] of images.entries()) {
    const r = await fetch(`${url}/v1/collections/${col}/faces`, {
      method: "POST",
      headers: AUTH,
      body: form(img, { externalId: `person-${i}`, metadata: JSON.stringify({ i }) }),
    });
    const b = await json(r);
    assert.equal(r.status, 201, JSON.stringify(b));
    faceIds.push(b.faceId as string);
  }
  const s = await fetch(`${url}/v1/collections/${col}/search`, {
    method: "POST",
    headers: AUTH,
    body: form(images[0], { k: "3", threshold: "-1" }),
  });
  const sb = await json(s);
  assert.equal(s.status, 200, JSON.stringify(sb));
  const matches = sb.matches as { faceId: string; externalId: string; similarity: number }[];
  assert.equal(sb.searchedFaces, images.length);
  assert.equal(matches[0].faceId, faceIds[0]);
  assert.equal(matches[0].externalId, "person-0");
  // Stored embeddings are int8-quantised: self-similarity is 1 within that rounding.
  assert.ok(matches[0].similarity > 0.99, `self-similarity ${matches[0].similarity}`);

  const list = await fetch(`${url}/v1/collections/${col}/faces`, { headers: AUTH });
  const lb = await json(list);
  assert.equal(list.status, 200, JSON.stringify(lb));
  assert.equal((lb.faces as unknown[]).length, images.length);

  const del = await fetch(`${url}/v1/collections/${col}`, { method: "DELETE", headers: AUTH });
  assert.ok(del.status === 200 || del.status === 204, `delete → ${del.status}`);
  await del.body?.cancel();
  const gone = await fetch(`${url}/v1/collections/${col}`, { headers: AUTH });
  assert.equal(gone.status, 404);
  await gone.body?.cancel();

  if (expect.classifier) {
    const c = await fetch(`${url}/v1/classify`, {
      method: "POST",
      headers: AUTH,
      body: form(images[0], { k: "3" }),
    });
    const cb = await json(c);
    assert.equal(c.status, 200, JSON.stringify(cb));
    const p = cb.predictions as { label: string; probability: number }[];
    assert.equal(p.length, 3);
    assert.ok(p[0].probability >= p[1].probability && p[0].probability <= 1);
  }
  return { embeddings, health };
}
