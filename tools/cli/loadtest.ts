/**
 * `deno task loadtest`: a bounded load generator for the face API on this machine.
 *
 *   deno task loadtest [--url http://127.0.0.1:8000 --key KEY] [--endpoint embed|compare|search|classify]
 *                      [--concurrency 8] [--duration 10] [--max-requests 100000] [--gallery 100] [--json]
 *
 * Without --url it starts `scripts/serve.ts` itself (PORT=0, a temp DATA_DIR, a random key, rate
 * limit off; MODEL/WEIGHTS/BACKEND pass through) and reports the server's peak RSS (VmHWM from
 * /proc, Linux). Against --url only client-side numbers are shown. Only loopback targets are
 * accepted; concurrency ≤ 64, duration ≤ 120 s, requests ≤ 100 000: it always stops by itself.
 */
import { parseArgs } from "node:util";
import jpeg from "jpeg-js";
import { encode as encodePng } from "fast-png";

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    url: { type: "string" },
    key: { type: "string" },
    endpoint: { type: "string", default: "embed" },
    concurrency: { type: "string", default: "8" },
    duration: { type: "string", default: "10" },
    "max-requests": { type: "string", default: "100000" },
    gallery: { type: "string", default: "100" },
    image: { type: "string" },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (a.help) {
  console.log(
    "usage: deno task loadtest [--url U --key K] [--endpoint embed|compare|search|classify] " +
      "[--concurrency N≤64] [--duration S≤120] [--max-requests N] [--gallery N] [--image file] [--json]",
  );
  Deno.exit(0);
}

function die(msg: string): never {
  console.error(`loadtest: ${msg}`);
  Deno.exit(2);
}
const bounded = (name: string, v: string, lo: number, hi: number) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < lo || n > hi) die(`--${name} must be in [${lo}, ${hi}], got ${v}`);
  return n;
};
const concurrency = Math.floor(bounded("concurrency", a.concurrency!, 1, 64));
const durationS = bounded("duration", a.duration!, 0.5, 120);
const maxRequests = Math.floor(bounded("max-requests", a["max-requests"]!, 1, 100_000));
const gallery = Math.floor(bounded("gallery", a.gallery!, 0, 5000));
const endpoint = a.endpoint!;
if (!["embed", "compare", "search", "classify"].includes(endpoint)) die(`unknown --endpoint ${endpoint}`);

/** A smooth synthetic photo (the load test needs valid images, not faces). */
function syntheticJpeg(seed: number, size = 160): Uint8Array {
  const rgba = new Uint8Array(size * size * 4);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = (y * size + x) * 4;
      rgba[i] = (128 + 100 * Math.sin((x + seed * 13) / 17)) | 0;
      rgba[i + 1] = (128 + 100 * Math.cos((y + seed * 7) / 11)) | 0;
      rgba[i + 2] = ((x * y + seed * 31) % 256) | 0;
      rgba[i + 3] = 255;
    }
  }
  return new Uint8Array(jpeg.encode({ data: rgba, width: size, height: size }, 90).data);
}

// --- target ------------------------------------------------------------------------------------
let base = a.url;
let key = a.key ?? Deno.env.get("API_KEY") ?? "";
let child: Deno.ChildProcess | null = null;
let tmp: string | null = null;
if (base) {
  const h = new URL(base).hostname;
  if (!(h === "localhost" || h === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(h))) {
    die(`refusing to load-test ${h}: only loopback addresses (127.0.0.0/8, localhost, ::1) are allowed`);
  }
  if (!key) die("--key (or env API_KEY) is required with --url");
} else {
  tmp = await Deno.makeTempDir({ prefix: "repmlp-loadtest-" });
  key = "lt_" + crypto.randomUUID();
  const envPass = Object.fromEntries(
    ["MODEL", "WEIGHTS", "BACKEND", "CLASSIFIER"].flatMap((
      k,
    ) => (Deno.env.get(k) ? [[k, Deno.env.get(k)!]] : [])),
  );
  child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./serve.ts", import.meta.url).pathname],
    env: { ...envPass, PORT: "0", HOST: "127.0.0.1", DATA_DIR: tmp, API_KEYS: key, RATE_LIMIT_RPM: "0" },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const deadline = Date.now() + 120_000;
  while (!base) {
    if (Date.now() > deadline) die("server did not start within 120 s");
    const { value, done } = await reader.read();
    if (done) die(`server exited during startup:\n${buf}`);
    buf += value;
    const m = /listening on (http:\/\/[^\s]+)/.exec(buf);
    if (m) base = m[1].replace("0.0.0.0", "127.0.0.1");
  }
  // Keep draining stderr so the server never blocks on a full pipe.
  (async () => {
    try {
      while (!(await reader.read()).done) { /* discard */ }
    } catch { /* closed */ }
  })();
}
const auth = { Authorization: `Bearer ${key}` };

function peakRssMiB(pid: number): number | null {
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = /VmHWM:\s+(\d+) kB/.exec(s);
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

// --- request factory -------------------------------------------------------------------------------
const images = a.image
  ? [await Deno.readFile(a.image)]
  : Array.from({ length: 8 }, (_, i) => syntheticJpeg(i));
const grey = encodePng({
  width: 28,
  height: 28,
  data: Uint8Array.from({ length: 784 }, (_, i) => (i * 7) % 256),
  channels: 1,
  depth: 8,
});
const blob = (b: Uint8Array, type = "image/jpeg") => new Blob([b as BlobPart], { type });
function requestFor(i: number): [string, RequestInit] {
  const f = new FormData();
  const img = images[i % images.length];
  switch (endpoint) {
    case "compare":
      f.append("source", blob(img));
      f.append("target", blob(images[(i + 1) % images.length]));
      return ["/v1/faces/compare", { method: "POST", body: f, headers: auth }];
    case "search":
      f.append("image", blob(img));
      return ["/v1/collections/loadtest/search?threshold=-1", { method: "POST", body: f, headers: auth }];
    case "classify":
      f.append("image", blob(grey, "image/png"));
      return ["/v1/classify", { method: "POST", body: f, headers: auth }];
    default:
      f.append("image", blob(img));
      return ["/v1/faces/embed", { method: "POST", body: f, headers: auth }];
  }
}

let exitCode = 0;
try {
  if (endpoint === "search") {
    await (await fetch(`${base}/v1/collections/loadtest`, { method: "PUT", headers: auth })).body?.cancel();
    for (let i = 0; i < gallery; i++) {
      const f = new FormData();
      f.append("image", blob(syntheticJpeg(100 + i, 96)));
      const r = await fetch(`${base}/v1/collections/loadtest/faces`, {
        method: "POST",
        body: f,
        headers: auth,
      });
      await r.body?.cancel();
      if (r.status !== 201) die(`gallery enrolment failed with HTTP ${r.status}`);
    }
  }
  // Warm-up (not measured).
  for (let i = 0; i < 3; i++) {
    const [p, init] = requestFor(i);
    await (await fetch(base + p, init)).body?.cancel();
  }

  // --- run ----------------------------------------------------------------------------------------
  const lat: number[] = [];
  const statuses = new Map<string, number>();
  let issued = 0;
  const t0 = performance.now();
  const endAt = t0 + durationS * 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < endAt && issued < maxRequests) {
      const [p, init] = requestFor(issued++);
      const s = performance.now();
      let st: string;
      try {
        const r = await fetch(base + p, init);
        await r.arrayBuffer();
        st = String(r.status);
      } catch (e) {
        st = `network: ${(e as Error).name}`;
      }
      lat.push(performance.now() - s);
      statuses.set(st, (statuses.get(st) ?? 0) + 1);
    }
  }));
  const wall = (performance.now() - t0) / 1000;
  lat.sort((x, y) => x - y);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
  const ok = statuses.get("200") ?? 0;
  const summary = {
    endpoint,
    concurrency,
    durationS: Math.round(wall * 100) / 100,
    requests: lat.length,
    errors: lat.length - ok,
    statuses: Object.fromEntries(statuses),
    throughputRps: Math.round((lat.length / wall) * 10) / 10,
    p50Ms: Math.round(q(0.5) * 10) / 10,
    p99Ms: Math.round(q(0.99) * 10) / 10,
    maxMs: Math.round((lat.at(-1) ?? NaN) * 10) / 10,
    serverPeakRssMiB: child ? peakRssMiB(child.pid) : null,
    clientPeakRssMiB: peakRssMiB(Deno.pid),
    gallery: endpoint === "search" ? gallery : undefined,
  };
  if (a.json) console.log(JSON.stringify(summary));
  else {
    console.log(`endpoint        ${summary.endpoint} (${base})`);
    console.log(`concurrency     ${concurrency}, ${summary.durationS} s`);
    console.log(`requests        ${summary.requests} (${JSON.stringify(summary.statuses)})`);
    console.log(`errors          ${summary.errors}`);
    console.log(`throughput      ${summary.throughputRps} req/s`);
    console.log(`latency         p50 ${summary.p50Ms} ms, p99 ${summary.p99Ms} ms, max ${summary.maxMs} ms`);
    console.log(
      `peak RSS        server ${summary.serverPeakRssMiB?.toFixed(1) ?? "n/a (not spawned here)"} MiB, ` +
        `load generator ${summary.clientPeakRssMiB?.toFixed(1)} MiB`,
    );
  }
  if (summary.errors > 0) exitCode = 1;
} finally {
  if (child) {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
  }
  if (tmp) await Deno.remove(tmp, { recursive: true }).catch(() => {});
}
Deno.exit(exitCode);
