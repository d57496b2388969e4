/**
 * `deno task bench:edge`: cold start and warm latency of the edge builds in their real runtimes, and
 * peak memory.
 *
 *  - deno:     `deno serve dist/deno/server.mjs` (the documented command)
 *  - workerd:  plain `workerd serve` on the Workers modules (what production runs, minus wrangler)
 *  - wrangler: `wrangler dev` (workerd + local D1 + wrangler's proxy; the developer loop)
 *
 * Cold start = process spawn → first successful `POST /v1/faces/embed` (the first request also
 * creates the ORT session). Warm = sequential embeds afterwards. Peak RSS = VmHWM of the serving
 * process (for wrangler: of the workerd running the worker).
 */
import jpeg from "jpeg-js";
import { parseArgs } from "node:util";
import { join } from "node:path";
import {
  buildEdge,
  DEFAULT_MANIFEST,
  modelsFromManifest,
  type ModelSpec,
  modelSpecFor,
  readManifest,
} from "../build/edge.ts";
import {
  applyMigrations,
  freePort,
  isolateHeap,
  memoryOf,
  type Spawned,
  startDeno,
  startWorkerd,
  startWrangler,
  waitFor,
  workerdProcesses,
} from "../build/edge_run.ts";
import { fail, fmtBytes, main } from "./_cli.ts";

const KEY = "bench-key-0123456789";

/** A smooth synthetic 160×160 RGB JPEG (decoding cost like a small face crop). */
function benchImage(): Uint8Array {
  const w = 160, h = 160, d = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 4;
      d[i] = (x * 255) / w;
      d[i + 1] = (y * 255) / h;
      d[i + 2] = 128 + 100 * Math.sin((x + y) / 9);
      d[i + 3] = 255;
    }
  }
  return new Uint8Array(jpeg.encode({ data: d, width: w, height: h }, 90).data);
}

async function embed(url: string, img: Uint8Array): Promise<number[] | undefined> {
  const f = new FormData();
  f.append("image", new Blob([img as BlobPart], { type: "image/jpeg" }), "face.jpg");
  const r = await fetch(`${url}/v1/faces/embed`, {
    method: "POST",
    headers: { Authorization: `Bearer ${KEY}` },
    body: f,
    signal: AbortSignal.timeout(60_000),
  });
  const b = await r.json();
  if (r.status !== 200) {
    if (b?.error?.code === "misconfigured") throw new Error(`misconfigured: ${b.error.message}`);
    return undefined;
  }
  return b.embedding;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};

/** One target's figures. */
interface Row {
  target: string;
  coldMs: number[];
  /** Spawn → the port accepts connections (process + runtime + script loaded). */
  listenMs: number[];
  warmP50Ms: number;
  warmP90Ms: number;
  peakRssBytes: number;
  wasmMemoryBytes: number;
  initMs: number;
  /** V8 heap (total) of the worker isolate, workerd only. */
  heapBytes?: number;
  note: string;
}

async function measure(
  target: string,
  start: () => Promise<Spawned>,
  rssOf: (s: Spawned) => number,
  o: { runs: number; warm: number; img: Uint8Array; note: string; heap?: () => Promise<number> },
): Promise<Row> {
  const cold: number[] = [];
  const listen: number[] = [];
  const warm: number[] = [];
  let peak = 0, wasm = 0, init = 0, heap: number | undefined;
  for (let run = 0; run < o.runs; run++) {
    const s = await start();
    try {
      const port = Number(new URL(s.url).port);
      await waitFor(
        s,
        async () => {
          (await Deno.connect({ hostname: "127.0.0.1", port })).close();
          return true;
        },
        "a listening port",
        180_000,
        10,
      );
      listen.push(Date.now() - s.spawnedAt);
      await waitFor(s, () => embed(s.url, o.img), "a successful embed", 180_000, 25);
      cold.push(Date.now() - s.spawnedAt);
      if (run === o.runs - 1) {
        for (let i = 0; i < o.warm; i++) {
          const t = performance.now();
          if (!(await embed(s.url, o.img))) throw new Error("warm embed failed");
          warm.push(performance.now() - t);
        }
        const h = await (await fetch(`${s.url}/healthz`)).json();
        wasm = h.edge?.wasmMemoryBytes ?? 0;
        init = h.edge?.initMs ?? -1;
        heap = await o.heap?.();
      }
      peak = Math.max(peak, rssOf(s));
    } catch (e) {
      console.error(s.output().slice(-3000));
      throw e;
    } finally {
      await s.stop();
    }
  }
  return {
    target,
    coldMs: cold,
    listenMs: listen,
    warmP50Ms: pct(warm, 0.5),
    warmP90Ms: pct(warm, 0.9),
    peakRssBytes: peak,
    wasmMemoryBytes: wasm,
    initMs: init,
    heapBytes: heap,
    note: o.note,
  };
}

const USAGE = `deno task bench:edge [options]

Builds dist for both targets (into a temp dir) and measures cold start, warm latency and memory.

  --face <bundle>      face bundle only (default: the weights/manifest.json defaults, face + classifier,
                       as deno task serve)
  --runs <n>           cold starts per target (default 3; wrangler: 1)
  --warm <n>           warm embeds (default 30)
  --targets <list>     comma-separated: deno,workerd,wrangler (default all)
  --workers-dtype <d>  bundle dtype on Workers (default int8)
  --int8 <mode>        weights (default) | dynamic: how int8 bundles run
  --inline             Deno build with ORT wasm and weights inlined in server.mjs
  --json <file>        also write the figures as JSON`;

if (import.meta.main) {
  await main(async () => {
    let parsed;
    try {
      parsed = parseArgs({
        args: Deno.args,
        options: {
          face: { type: "string" },
          runs: { type: "string", default: "3" },
          warm: { type: "string", default: "30" },
          targets: { type: "string", default: "deno,workerd,wrangler" },
          "workers-dtype": { type: "string", default: "int8" },
          int8: { type: "string", default: "weights" },
          inline: { type: "boolean" },
          json: { type: "string" },
          help: { type: "boolean", short: "h" },
        },
      });
    } catch (e) {
      fail(`${(e as Error).message}\n\n${USAGE}`);
    }
    const v = parsed.values;
    if (v.help) return console.log(USAGE);
    const runs = Number(v.runs), warmN = Number(v.warm);
    if (!(runs >= 1) || !(warmN >= 1)) fail("--runs and --warm must be ≥ 1");
    const targets = String(v.targets).split(",");
    let models: ModelSpec[];
    const m = await readManifest();
    if (v.face) {
      models = [modelSpecFor(v.face, "face", m)];
    } else {
      models = m ? modelsFromManifest(m, DEFAULT_MANIFEST) : [];
      if (!models.length) fail(`no face model: ${DEFAULT_MANIFEST} missing or empty`, "pass --face <bundle>");
    }
    const tmp = await Deno.makeTempDir({ prefix: "bench-edge-" });
    try {
      const reports = await buildEdge({
        models,
        outDir: join(tmp, "dist"),
        workersDtype: v["workers-dtype"] as "int8",
        int8: v.int8 === "dynamic" ? "dynamic" : "weights",
        inline: Boolean(v.inline),
        quiet: true,
      });
      const img = benchImage();
      const rows: Row[] = [];
      const denoDist = join(tmp, "dist", "deno"), cfDist = join(tmp, "dist", "cloudflare");
      const denoModel = reports[0].build.models[0], cfModel = reports[1].build.models[0];
      const host =
        `${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} CPUs, deno ${Deno.version.deno}`;
      const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
      const loadBefore = load();
      if (targets.includes("deno")) {
        const data = join(tmp, "kv");
        await Deno.mkdir(data);
        rows.push(
          await measure(
            "deno serve",
            () => Promise.resolve(startDeno(denoDist, { apiKey: KEY, dataDir: data })),
            (s) => memoryOf(s.pid)?.peak ?? 0,
            { runs, warm: warmN, img, note: `${denoModel.dtype} bundle${v.inline ? ", inlined" : ""}` },
          ),
        );
      }
      if (targets.includes("workerd")) {
        const inspectorPort = freePort();
        rows.push(
          await measure(
            "workerd",
            () => startWorkerd(cfDist, { apiKey: KEY, stateDir: join(tmp, "workerd"), inspectorPort }),
            (s) => memoryOf(s.pid)?.peak ?? 0,
            {
              runs,
              warm: warmN,
              img,
              note: `${cfModel.dtype} bundle (int8 ${v.int8}), no wrangler`,
              heap: async () => (await isolateHeap(inspectorPort)).totalSize,
            },
          ),
        );
      }
      if (targets.includes("wrangler")) {
        const state = join(tmp, "wrangler");
        await applyMigrations(cfDist, state);
        rows.push(
          await measure(
            "wrangler dev",
            () => Promise.resolve(startWrangler(cfDist, { apiKey: KEY, stateDir: state })),
            (s) => Math.max(0, ...workerdProcesses(s.pid).filter((p) => p.user).map((p) => p.peak)),
            { runs: 1, warm: warmN, img, note: `${cfModel.dtype} bundle, RSS of the worker's workerd` },
          ),
        );
      }
      const date = new Date().toISOString().slice(0, 10);
      console.log(`bench:edge ${date} — ${host}; load average ${loadBefore} before, ${load()} after`);
      console.log(
        `models: deno ${
          reports[0].build.models.map((m) => `${m.file} (${fmtBytes(m.bytes)})`).join(", ")
        }; ` +
          `workers ${reports[1].build.models.map((m) => `${m.file} (${fmtBytes(m.bytes)})`).join(", ")}\n`,
      );
      console.log(
        "| target | cold start (spawn → first embed) | spawn → listening | first-request init | warm p50 | warm p90 | peak RSS | " +
          "ORT wasm memory | isolate JS heap | notes |",
      );
      console.log("|---|---|---|---|---|---|---|---|---|---|");
      for (const r of rows) {
        const cold = r.coldMs.length > 1
          ? `${pct(r.coldMs, 0.5)} ms (median of ${r.coldMs.length}: ${r.coldMs.join(", ")})`
          : `${r.coldMs[0]} ms`;
        console.log(
          `| ${r.target} | ${cold} | ${pct(r.listenMs, 0.5)} ms | ${r.initMs} ms | ${
            r.warmP50Ms.toFixed(1)
          } ms | ${r.warmP90Ms.toFixed(1)} ms | ${fmtBytes(r.peakRssBytes)} | ${
            fmtBytes(r.wasmMemoryBytes)
          } | ${r.heapBytes ? fmtBytes(r.heapBytes) : "–"} | ${r.note} |`,
        );
      }
      if (v.json) {
        await Deno.writeTextFile(
          v.json,
          JSON.stringify({ date, host, models: { deno: denoModel, workers: cfModel }, rows }, null, 2) + "\n",
        );
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  });
}
