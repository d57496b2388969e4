/**
 * `deno task bench:edge`: cold start of the edge builds in their real runtimes, broken down, side by
 * side with a hello-world Hono app on the same runtime; then warm latency and peak memory.
 *
 *  - deno:     `deno serve dist/deno/server.mjs` (the documented command), BACKEND=wasm and =native
 *  - workerd:  plain `workerd serve` on the Workers modules (what production runs, minus wrangler)
 *  - wrangler: `wrangler dev` (workerd + local D1 + wrangler's proxy; the developer loop; opt-in)
 *
 * Cold start = process spawn → first successful `POST /v1/faces/embed` (hello: first `GET /`). The
 * breakdown comes from the app's own marks (`/healthz` → `edge.coldStart`, runtime/adapter/shared.ts).
 */
import jpeg from "jpeg-js";
import { join } from "node:path";
import { chooseModels } from "../../runtime/src/server/manifest.ts";
import { buildEdge } from "../build/mod.ts";
import { buildHello } from "../build/hello.ts";
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
} from "../build/edge_run.ts";
import { fail, fmtBytes, main, parseCli } from "./_cli.ts";

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

async function hello(url: string): Promise<true | undefined> {
  const r = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  await r.body?.cancel();
  return r.status === 200 ? true : undefined;
}

const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
};

type Marks = Record<string, number | string | null>;

/** One runtime × app. */
interface Row {
  name: string;
  kind: "hello" | "face";
  coldMs: number[];
  listenMs: number[];
  /** Per cold run: the app's cold-start marks, and spawn → first module statement. */
  marks: Marks[];
  bootMs: number[];
  warmP50Ms?: number;
  peakRssBytes: number;
  wasmMemoryBytes?: number;
  heapBytes?: number;
  note: string;
}

async function measure(
  name: string,
  kind: Row["kind"],
  start: () => Promise<Spawned>,
  o: { runs: number; warm: number; img: Uint8Array; note: string; heap?: () => Promise<number> },
): Promise<Row> {
  const row: Row = {
    name,
    kind,
    coldMs: [],
    listenMs: [],
    marks: [],
    bootMs: [],
    peakRssBytes: 0,
    note: o.note,
  };
  for (let run = 0; run < o.runs; run++) {
    const s = await start();
    try {
      const port = Number(new URL(s.url).port);
      const connect = async () => ((await Deno.connect({ hostname: "127.0.0.1", port })).close(), true);
      await waitFor(s, connect, "a listening port", 180_000, 5);
      row.listenMs.push(Date.now() - s.spawnedAt);
      if (kind === "hello") await waitFor(s, () => hello(s.url), "a hello answer", 60_000, 5);
      else await waitFor(s, () => embed(s.url, o.img), "a successful embed", 180_000, 10);
      row.coldMs.push(Date.now() - s.spawnedAt);
      if (kind === "face") {
        const h = await (await fetch(`${s.url}/healthz`, { headers: { Authorization: `Bearer ${KEY}` } }))
          .json();
        const cs = (h.edge?.coldStart ?? {}) as Marks;
        row.marks.push(cs);
        const t0 = Number(cs.timeOrigin) + Number(cs.moduleStartMs);
        if (Number(cs.timeOrigin) > 0 && Number.isFinite(t0)) row.bootMs.push(t0 - s.spawnedAt);
        row.wasmMemoryBytes = h.edge?.wasmMemoryBytes;
        if (run === o.runs - 1) {
          const warm: number[] = [];
          for (let i = 0; i < o.warm; i++) {
            const t = performance.now();
            if (!(await embed(s.url, o.img))) throw new Error("warm embed failed");
            warm.push(performance.now() - t);
          }
          row.warmP50Ms = median(warm);
          row.heapBytes = await o.heap?.();
        }
      }
      row.peakRssBytes = Math.max(row.peakRssBytes, memoryOf(s.pid)?.peak ?? 0);
    } catch (e) {
      console.error(s.output().slice(-3000));
      throw e;
    } finally {
      await s.stop();
    }
  }
  return row;
}

const USAGE = `deno task bench:edge [options]

Builds dist for both targets and a hello-world Hono app (into a temp dir), then measures cold start
(spawn → first embed, broken down), warm latency and memory, each runtime next to its hello world.

  --face <bundle>      face bundle only (default: the weights/manifest.json defaults, as deno task serve)
  --runs <n>           cold starts per row (default 3; wrangler: 1)
  --warm <n>           warm embeds (default 20)
  --targets <list>     comma-separated: deno,native,workerd,wrangler (default deno,native,workerd)
  --dtype <d>          bundle dtype (default int8)
  --int8 <mode>        weights (default) | dynamic: how int8 bundles run
  --no-preload         dist/deno with PRELOAD=0 (face session created by the first request)
  --json <file>        also write the figures as JSON`;

const ms = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? `${Math.round(v)}` : "–");

function table(rows: Row[]): string {
  const m = (r: Row, k: string) => median(r.marks.map((x) => Number(x[k] ?? NaN)));
  const head = [
    "runtime / app",
    "spawn → first answer (median)",
    "spawn → listening",
    "runtime boot",
    "module eval",
    "wasm compile",
    "wasm instantiate / addon load",
    "ORT init + session create",
    "graph read (Deno) / build (workerd)",
    "first run",
    "warm p50",
    "peak RSS",
    "ORT wasm mem",
    "isolate heap",
    "notes",
  ];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const r of rows) {
    const face = r.kind === "face";
    lines.push(
      `| ${
        [
          r.name,
          `**${ms(median(r.coldMs))} ms** (${r.coldMs.join(", ")})`,
          `${ms(median(r.listenMs))} ms`,
          face ? `${ms(median(r.bootMs))}` : "",
          face ? ms(m(r, "moduleEvalMs")) : "",
          face ? ms(m(r, "wasmCompileReadyMs")) : "",
          face ? ms(m(r, "wasmMs")) : "",
          face ? ms(m(r, "firstSessionMs")) : "",
          face ? ms(m(r, "graphReadMs")) : "",
          face ? ms(m(r, "firstRunMs")) : "",
          r.warmP50Ms !== undefined ? `${r.warmP50Ms.toFixed(1)} ms` : "",
          fmtBytes(r.peakRssBytes),
          r.wasmMemoryBytes ? fmtBytes(r.wasmMemoryBytes) : "",
          r.heapBytes ? fmtBytes(r.heapBytes) : "",
          r.note,
        ].join(" | ")
      } |`,
    );
  }
  return lines.join("\n");
}

if (import.meta.main) {
  await main(async () => {
    const { values: v } = parseCli(
      USAGE,
      {
        face: { type: "string" },
        runs: { type: "string", default: "3" },
        warm: { type: "string", default: "20" },
        targets: { type: "string", default: "deno,native,workerd" },
        dtype: { type: "string", default: "int8" },
        int8: { type: "string", default: "weights" },
        "no-preload": { type: "boolean" },
        json: { type: "string" },
      },
      Deno.args,
      { positionals: false },
    );
    const runs = Number(v.runs), warmN = Number(v.warm);
    if (!(runs >= 1) || !(warmN >= 1)) fail("--runs and --warm must be ≥ 1");
    const targets = String(v.targets).split(",");
    const models = await chooseModels({
      manifestPath: "weights/manifest.json",
      faces: v.face ? [v.face] : undefined,
      noClassifier: Boolean(v.face),
      dtype: v.dtype,
    });
    const tmp = await Deno.makeTempDir({ prefix: "bench-edge-" });
    try {
      const reports = await buildEdge({
        models,
        outDir: join(tmp, "dist"),
        dtype: v.dtype as "int8",
        int8: v.int8 === "dynamic" ? "dynamic" : "weights",
        quiet: true,
      });
      const hw = await buildHello(join(tmp, "hello"));
      const img = benchImage();
      const rows: Row[] = [];
      const denoDist = join(tmp, "dist", "deno"), cfDist = join(tmp, "dist", "cloudflare");
      const host =
        `${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} CPUs, deno ${Deno.version.deno}`;
      const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
      const loadBefore = load();
      const common = { runs, warm: warmN, img };
      const denoEnv: Record<string, string> = v["no-preload"] ? { PRELOAD: "0" } : {};
      const kv = async (n: string) => (await Deno.mkdir(join(tmp, n), { recursive: true }), join(tmp, n));
      if (targets.includes("deno") || targets.includes("native")) {
        const dataDir = await kv("kv-hello");
        rows.push(
          await measure(
            "deno serve · hello-world Hono",
            "hello",
            () => Promise.resolve(startDeno(hw.deno, { apiKey: KEY, dataDir })),
            { ...common, note: "baseline" },
          ),
        );
      }
      if (targets.includes("deno")) {
        const dataDir = await kv("kv-wasm");
        rows.push(
          await measure(
            "deno serve · face API (wasm)",
            "face",
            () => Promise.resolve(startDeno(denoDist, { apiKey: KEY, dataDir, env: denoEnv })),
            { ...common, note: `${v.dtype}, ${v["no-preload"] ? "PRELOAD=0" : "face session preloaded"}` },
          ),
        );
      }
      if (targets.includes("native")) {
        const dataDir = await kv("kv-native");
        rows.push(
          await measure(
            "deno serve · face API (BACKEND=native)",
            "face",
            () =>
              Promise.resolve(
                startDeno(denoDist, { apiKey: KEY, dataDir, env: { ...denoEnv, BACKEND: "native" } }),
              ),
            { ...common, note: "onnxruntime-node" },
          ),
        );
      }
      if (targets.includes("workerd")) {
        const inspectorPort = freePort();
        rows.push(
          await measure(
            "workerd · hello-world Hono",
            "hello",
            () => startWorkerd(hw.cloudflare, { apiKey: KEY, stateDir: join(tmp, "workerd-hello") }),
            {
              ...common,
              note: "baseline",
            },
          ),
        );
        rows.push(
          await measure(
            "workerd · face API",
            "face",
            () => startWorkerd(cfDist, { apiKey: KEY, stateDir: join(tmp, "workerd"), inspectorPort }),
            {
              ...common,
              note: `${v.dtype} (int8 ${v.int8}), no wrangler; wasm compiled before listening`,
              heap: async () => (await isolateHeap(inspectorPort)).totalSize,
            },
          ),
        );
      }
      if (targets.includes("wrangler")) {
        const state = join(tmp, "wrangler");
        await applyMigrations(cfDist, state);
        const row = await measure(
          "wrangler dev · face API",
          "face",
          () => Promise.resolve(startWrangler(cfDist, { apiKey: KEY, stateDir: state })),
          { ...common, runs: 1, note: "RSS: wrangler's own process" },
        );
        rows.push(row);
      }
      const date = new Date().toISOString().slice(0, 10);
      console.log(`bench:edge ${date} — ${host}; load average ${loadBefore} before, ${load()} after`);
      console.log(
        `models: ${
          reports[0].build.models.map((m) => `${m.file} (${fmtBytes(m.bytes)}, from ${m.dtype})`).join(", ")
        }`,
      );
      console.log(
        "runtime boot = spawn → the bundle's first statement (Deno; workerd: see its hello-world row); " +
          "module eval = rest of the bundle; wasm compile = ORT wasm compiled in the background from the first " +
          "statement (Deno; workerd compiles it before listening); Deno ships ONNX graphs built at build time; workerd builds them from the int8 bundle on first use.\n",
      );
      console.log(table(rows));
      if (v.json) await Deno.writeTextFile(v.json, JSON.stringify({ date, host, rows }, null, 2) + "\n");
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  });
}
