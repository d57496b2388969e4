/**
 * `deno task serve`: the face API on Deno with the shipped models and a Deno KV gallery.
 *
 * Environment:
 *   PORT            listen port (default 8000; 0 = any free port)
 *   HOST            listen address (default 127.0.0.1; 0.0.0.0 to reach it from a phone on the LAN)
 *   API_KEYS        comma-separated keys; if empty, one is generated into $DATA_DIR/api-key and printed once
 *   DATA_DIR        gallery + generated key (default ./.data)
 *   MODEL           face bundle path (default: the manifest's default face bundle)
 *   CLASSIFIER      classifier bundle path, or "none" (default: the manifest's default classifier)
 *   WEIGHTS         manifest path (default weights/manifest.json)
 *   DETECTOR        face detector ONNX path, or "none" (default: the manifest's default detector)
 *   BACKEND         auto | webgpu | wasm | native | reference (default auto)
 *   RATE_LIMIT_RPM  requests per minute per key (default 600; 0 disables)
 *   CORS_ORIGINS    comma-separated origins or * (default: none)
 *   MAX_BODY_BYTES  default 5242880;  MAX_PIXELS  default 40000000
 */
import { basename, dirname, join, resolve } from "node:path";
import { createApp } from "../../runtime/src/server/app.ts";
import {
  type ManifestEntry,
  parseManifest,
  pickDefault,
  pickDetector,
  servedModelFromBundle,
} from "../../runtime/src/server/bundles.ts";
import { FaceDetector } from "../../runtime/src/face/detect.ts";
import type { LoadedServedModel } from "../../runtime/src/server/bundles.ts";
import type { ClassifierModel, FaceModel } from "../../runtime/src/server/served_model.ts";
import { playgroundHandler } from "../../runtime/src/server/playground.ts";
import { KvStore } from "../../runtime/src/server/store/kv.ts";
import type { Backend } from "../../runtime/src/backends/mod.ts";

const env = (k: string, d = "") => Deno.env.get(k) ?? d;

function fail(msg: string): never {
  console.error(`serve: ${msg}`);
  Deno.exit(1);
}

function intEnv(k: string, d: number): number {
  const v = Number(env(k, String(d)));
  if (!Number.isInteger(v) || v < 0) fail(`${k} must be a non-negative integer, got '${env(k)}'`);
  return v;
}

async function readManifest(path: string) {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return null;
  }
  return parseManifest(JSON.parse(text), path);
}

async function loadEntry(
  file: string,
  entry: Pick<ManifestEntry, "name" | "task" | "threshold" | "labels" | "metrics">,
  backend: Backend,
): Promise<LoadedServedModel> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(file);
  } catch {
    fail(
      `${entry.task} bundle '${file}' not found; run the conversion/training task that produces it, or point ${
        entry.task === "face" ? "MODEL" : "CLASSIFIER"
      } at a bundle`,
    );
  }
  const t0 = performance.now();
  const m = await servedModelFromBundle(bytes, entry, { backend, log: (s) => console.error(`serve: ${s}`) });
  console.error(
    `serve: loaded ${entry.task} '${m.model.name}' (${m.model.dtype}, ${m.model.backend}) from ${file} in ${
      Math.round(performance.now() - t0)
    } ms`,
  );
  return m;
}

/** API keys from env, or the generated one under DATA_DIR (created and printed on first start). */
async function apiKeys(dataDir: string): Promise<string[]> {
  const keys = env("API_KEYS").split(",").map((k) => k.trim()).filter(Boolean);
  if (keys.length) return keys;
  const file = join(dataDir, "api-key");
  try {
    const k = (await Deno.readTextFile(file)).trim();
    if (k) {
      console.error(`serve: API_KEYS not set; using the key generated earlier in ${file}`);
      return [k];
    }
  } catch { /* first start */ }
  const k = "rk_" + btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(24))))
    .replace(/\+/g, "-").replace(/\//g, "_");
  await Deno.writeTextFile(file, k + "\n", { mode: 0o600 });
  console.error(
    `serve: API_KEYS not set; generated an API key (saved to ${file}, shown only now):\n\n    ${k}\n`,
  );
  return [k];
}

async function main() {
  const dataDir = resolve(env("DATA_DIR", "./.data"));
  await Deno.mkdir(dataDir, { recursive: true });
  const backend = env("BACKEND", "auto") as Backend;
  const manifestPath = resolve(env("WEIGHTS", "weights/manifest.json"));
  const manifest = await readManifest(manifestPath);
  const rel = (f: string) => resolve(dirname(manifestPath), f);

  const loaded: LoadedServedModel[] = [];
  const modelPath = env("MODEL");
  if (modelPath) {
    const fromManifest = manifest?.bundles.find((b) => rel(b.file) === resolve(modelPath));
    loaded.push(
      await loadEntry(resolve(modelPath), {
        name: fromManifest?.name ?? basename(modelPath).replace(/\.[^.]+$/, ""),
        task: "face",
        threshold: fromManifest?.threshold,
        metrics: fromManifest?.metrics,
      }, backend),
    );
  } else {
    const face = manifest && pickDefault(manifest, "face");
    if (!face) {
      fail(
        manifest
          ? `${manifestPath} lists no face bundle; set MODEL=path/to/face.bundle`
          : `${manifestPath} not found: the default face model ships in weights/ (see docs/api.md), ` +
            `or set MODEL=path/to/face.bundle`,
      );
    }
    loaded.push(await loadEntry(rel(face.file), face, backend));
  }
  const clsPath = env("CLASSIFIER");
  if (clsPath !== "none") {
    if (clsPath) {
      loaded.push(
        await loadEntry(resolve(clsPath), {
          name: basename(clsPath).replace(/\.[^.]+$/, ""),
          task: "classifier",
        }, backend),
      );
    } else {
      const cls = manifest && pickDefault(manifest, "classifier");
      if (cls) loaded.push(await loadEntry(rel(cls.file), cls, backend));
      else console.error("serve: no classifier bundle in the manifest; /v1/classify is disabled");
    }
  }

  const detPath = env("DETECTOR");
  const detEntry = manifest && pickDetector(manifest);
  const detFile = detPath === "none"
    ? null
    : detPath
    ? resolve(detPath)
    : detEntry
    ? rel(detEntry.file)
    : null;
  if (!detFile) console.error("serve: no face detector; images without landmarks are centre-cropped");
  const detector = detFile
    ? await FaceDetector.create(await Deno.readFile(detFile), { backend, threads: 1 })
    : undefined;

  const store = await KvStore.open(join(dataDir, "gallery.kv"));
  const rpm = intEnv("RATE_LIMIT_RPM", 600);
  const cors = env("CORS_ORIGINS");
  const app = createApp({
    faceModels: loaded.filter((m) => m.task === "face").map((m) => m.model as FaceModel),
    classifiers: loaded.filter((m) => m.task === "classifier").map((m) => m.model as ClassifierModel),
    faceDetector: detector,
    store,
    apiKeys: await apiKeys(dataDir),
    rateLimit: rpm === 0 ? false : { requestsPerMinute: rpm, burst: Math.max(10, Math.ceil(rpm / 6)) },
    cors: cors ? { origins: cors === "*" ? "*" : cors.split(",").map((s) => s.trim()) } : undefined,
    maxBodyBytes: intEnv("MAX_BODY_BYTES", 5 * 2 ** 20),
    maxPixels: intEnv("MAX_PIXELS", 40_000_000),
    playground: () => playgroundHandler(),
  });

  const ac = new AbortController();
  const server = Deno.serve({
    hostname: env("HOST", "127.0.0.1"),
    port: intEnv("PORT", 8000),
    signal: ac.signal,
    onListen: ({ hostname, port }) => console.error(`serve: listening on http://${hostname}:${port}`),
  }, app.fetch);
  const stop = () => ac.abort();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await server.finished;
  store.close();
  for (const m of loaded) await m.session.dispose();
  await detector?.dispose();
  console.error("serve: stopped");
}

if (import.meta.main) await main();
