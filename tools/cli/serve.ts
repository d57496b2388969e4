/**
 * `deno task serve`: the face API on Deno with the shipped models and a Deno KV gallery.
 *
 * Environment (parsed by runtime/adapter/config.ts, the parser the edge entries share):
 *   PORT            listen port (default 8000; 0 = any free port)
 *   HOST            listen address (default 127.0.0.1; 0.0.0.0 to reach it from a phone on the LAN)
 *   API_KEYS        comma-separated keys; if empty, one is generated into $DATA_DIR/api-key and printed once
 *   DATA_DIR        gallery + generated key (default ./.data)
 *   MODEL           face bundle path (default: the manifest's default face bundle)
 *   CLASSIFIER      classifier bundle path, or "none" (default: the manifest's default classifier)
 *   WEIGHTS         manifest path (default weights/manifest.json)
 *   DETECTOR        face detector ONNX path, or "none" (default: the manifest's default detector)
 *   DTYPE           dtype of the manifest defaults: int8 (default, as the edge builds) | fp16 | fp32 | keep
 *   BACKEND         auto | webgpu | wasm | native | reference (default auto)
 *   RATE_LIMIT_RPM  requests per minute per key (default 600; 0 disables)
 *   CORS_ORIGINS    comma-separated origins or * (default: none)
 *   MAX_BODY_BYTES  default 5242880;  MAX_PIXELS  default 40000000
 */
import { join } from "node:path";
import { createApp } from "../../runtime/src/server/app.ts";
import { type LoadedServedModel, servedModelFromBundle } from "../../runtime/src/server/bundles.ts";
import {
  chooseDetector,
  chooseModels,
  readManifest,
  type ResolvedModel,
} from "../../runtime/src/server/manifest.ts";
import { FaceDetector } from "../../runtime/src/face/detect.ts";
import { RepmlpError } from "../../runtime/src/errors.ts";
import type { ClassifierModel, FaceModel } from "../../runtime/src/server/served_model.ts";
import { playgroundHandler } from "../../runtime/src/server/playground.ts";
import { KvStore } from "../../runtime/src/server/store/kv.ts";
import type { Backend } from "../../runtime/src/backends/mod.ts";
import { parseConfig, type ServerConfig } from "../../runtime/adapter/config.ts";

function fail(msg: string): never {
  console.error(`serve: ${msg}`);
  Deno.exit(1);
}

async function load(m: ResolvedModel, backend: Backend): Promise<LoadedServedModel> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(m.path);
  } catch {
    fail(
      `${m.entry.task} bundle '${m.path}' not found; run the conversion/training task that produces it, or point ${
        m.entry.task === "face" ? "MODEL" : "CLASSIFIER"
      } at a bundle`,
    );
  }
  const t0 = performance.now();
  const r = await servedModelFromBundle(bytes, m.entry, {
    backend,
    log: (s) => console.error(`serve: ${s}`),
  });
  console.error(
    `serve: loaded ${m.entry.task} '${r.model.name}' (${r.model.dtype}, ${r.model.backend}) from ${m.path} in ${
      Math.round(performance.now() - t0)
    } ms`,
  );
  return r;
}

const absDir = (p: string) => (p.startsWith("/") ? p : join(Deno.cwd(), p));

/** API keys from env, or the generated one under DATA_DIR (created and printed on first start). */
async function apiKeys(dataDir: string): Promise<string[]> {
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
  let cfg: ServerConfig;
  let models: ResolvedModel[];
  try {
    cfg = parseConfig((k) => Deno.env.get(k));
    models = await chooseModels({
      manifestPath: cfg.weights ?? "weights/manifest.json",
      faces: cfg.model ? [cfg.model] : undefined,
      classifiers: cfg.classifier && cfg.classifier !== "none" ? [cfg.classifier] : undefined,
      noClassifier: cfg.classifier === "none",
      dtype: cfg.dtype,
    });
  } catch (e) {
    fail(`${(e as Error).message}${e instanceof RepmlpError && e.hint ? `\nhint: ${e.hint}` : ""}`);
  }
  if (cfg.classifier !== "none" && !models.some((m) => m.entry.task === "classifier")) {
    console.error("serve: no classifier bundle in the manifest; /v1/classify is disabled");
  }
  const dataDir = absDir(cfg.dataDir ?? "./.data");
  await Deno.mkdir(dataDir, { recursive: true });
  const loaded: LoadedServedModel[] = [];
  for (const m of models) loaded.push(await load(m, cfg.backend));

  const manifestPath = cfg.weights ?? "weights/manifest.json";
  const det = chooseDetector(await readManifest(manifestPath), manifestPath, cfg.detector);
  if (!det) console.error("serve: no face detector; images without landmarks are centre-cropped");
  const detector = det
    ? await FaceDetector.create(await Deno.readFile(det.path), { backend: cfg.backend, threads: 1 })
    : undefined;
  if (det) console.error(`serve: loaded face detector ${det.path} (${detector!.backend})`);

  const store = await KvStore.open(join(dataDir, "gallery.kv"));
  const app = createApp({
    faceDetector: detector,
    ...cfg.app,
    faceModels: loaded.filter((m) => m.task === "face").map((m) => m.model as FaceModel),
    classifiers: loaded.filter((m) => m.task === "classifier").map((m) => m.model as ClassifierModel),
    store,
    apiKeys: cfg.apiKeys.length ? cfg.apiKeys : await apiKeys(dataDir),
    playground: () => playgroundHandler(),
  });

  const ac = new AbortController();
  const server = Deno.serve({
    hostname: cfg.host,
    port: cfg.port,
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
