/**
 * Start the built edge targets for real on 127.0.0.1 (shared by the edge tests and `bench:edge`):
 * `deno serve dist/deno/server.mjs`, `wrangler dev` on dist/cloudflare (workerd + local D1), and
 * plain `workerd serve` with a generated config (no wrangler, for cold-start and memory figures).
 */
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Pinned wrangler (it pins workerd and miniflare). */
export const WRANGLER = "npm:wrangler@4.164.0";

/** A spawned server process. */
export interface Spawned {
  url: string;
  pid: number;
  /** Milliseconds since epoch when the process was spawned. */
  spawnedAt: number;
  /** Collected stdout+stderr so far. */
  output(): string;
  /** True once the process has exited. */
  exited(): boolean;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
}

/** Spawn a process, collecting its output; `stop()` sends SIGTERM (SIGKILL after 5 s) and waits. */
export function spawn(
  cmd: string,
  args: string[],
  opts: { url: string; env?: Record<string, string>; cwd?: string },
): Spawned {
  const spawnedAt = Date.now();
  const child = new Deno.Command(cmd, {
    args,
    env: opts.env,
    cwd: opts.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let log = "";
  const dec = new TextDecoder();
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s) log = (log + dec.decode(c, { stream: true })).slice(-200_000);
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let done = false;
  const status = child.status.then((s) => (done = true, s));
  return {
    url: opts.url,
    pid: child.pid,
    spawnedAt,
    output: () => log,
    exited: () => done,
    async stop() {
      if (!done) {
        // Children (wrangler → workerd) are in our process group only if we kill the tree ourselves.
        const tree = descendants(child.pid);
        try {
          child.kill("SIGTERM");
        } catch { /* gone */ }
        const t = setTimeout(() => {
          for (const p of [child.pid, ...tree]) {
            try {
              Deno.kill(p, "SIGKILL");
            } catch { /* gone */ }
          }
        }, 5000);
        await status;
        clearTimeout(t);
        for (const p of tree) {
          try {
            Deno.kill(p, "SIGTERM");
          } catch { /* gone */ }
        }
      }
      await pumps;
    },
  };
}

/** Poll `fn` every `everyMs` until it returns a value, the process exits, or the deadline passes. */
export async function waitFor<T>(
  s: Spawned,
  fn: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 90_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    if (s.exited()) throw new Error(`process exited before ${what}:\n${s.output().slice(-4000)}`);
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) {
      throw new Error(`no ${what} within ${timeoutMs} ms:\n${s.output().slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Any HTTP answer on `path` (the listener is up). */
export function answered(s: Spawned, path = "/healthz", timeoutMs?: number): Promise<Response> {
  return waitFor(
    s,
    async () => {
      const r = await fetch(s.url + path, { signal: AbortSignal.timeout(30_000) });
      await r.body?.cancel();
      return r;
    },
    `an answer on ${path}`,
    timeoutMs,
  );
}

// --- process memory ---------------------------------------------------------------------------

function readProc(pid: number, file: string): string | null {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/${file}`);
  } catch {
    return null;
  }
}

/** All descendant pids of `pid` (Linux /proc). */
export function descendants(pid: number): number[] {
  const kids = new Map<number, number[]>();
  try {
    for (const e of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      const st = readProc(Number(e.name), "stat");
      if (!st) continue;
      const ppid = Number(st.slice(st.lastIndexOf(")") + 2).split(" ")[1]);
      kids.set(ppid, [...(kids.get(ppid) ?? []), Number(e.name)]);
    }
  } catch {
    return [];
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) {
    for (const k of kids.get(stack.pop()!) ?? []) out.push(k), stack.push(k);
  }
  return out;
}

/** Peak (VmHWM) and current (VmRSS) resident set of a process in bytes; null if unreadable. */
export function memoryOf(pid: number): { peak: number; rss: number; name: string; args: string } | null {
  const st = readProc(pid, "status");
  if (!st) return null;
  const kb = (k: string) => Number(st.match(new RegExp(`^${k}:\\s+(\\d+) kB`, "m"))?.[1] ?? 0) * 1024;
  const name = st.match(/^Name:\s+(\S+)/m)?.[1] ?? "?";
  const args = (readProc(pid, "cmdline") ?? "").replaceAll("\0", " ").trim();
  return { peak: kb("VmHWM"), rss: kb("VmRSS"), name, args };
}

/** workerd processes under `pid`, the one running the user worker first (it has the inspector). */
export function workerdProcesses(pid: number): { pid: number; peak: number; rss: number; user: boolean }[] {
  return descendants(pid)
    .map((p) => ({ p, m: memoryOf(p) }))
    .filter((x) => x.m?.name === "workerd")
    .map((x) => ({ pid: x.p, peak: x.m!.peak, rss: x.m!.rss, user: x.m!.args.includes("--inspector-addr") }))
    .sort((a, b) => Number(b.user) - Number(a.user));
}

// --- targets ----------------------------------------------------------------------------------

/**
 * Start a built dist/deno: `deno serve server.mjs` (default), or `deno run main.mjs` (the entry for
 * hosts that run a script, e.g. Deno Deploy apps).
 */
export function startDeno(
  distDeno: string,
  o: {
    apiKey: string;
    dataDir: string;
    port?: number;
    entry?: "serve" | "run";
    unstableKv?: boolean;
    /** Extra environment (e.g. BACKEND=native, which also gets --allow-ffi --allow-sys for the addon). */
    env?: Record<string, string>;
    /** With BACKEND=native: grant --allow-ffi (default true; false shows the fallback to wasm). */
    allowFfi?: boolean;
  },
): Spawned {
  const port = o.port ?? freePort();
  const perms = [
    "--allow-net",
    "--allow-read",
    "--allow-env",
    `--allow-write=${o.dataDir}`,
    ...(o.unstableKv === false ? [] : ["--unstable-kv"]),
    ...(o.env?.BACKEND === "native" && o.allowFfi !== false ? ["--allow-ffi", "--allow-sys"] : []),
    "--no-config",
  ];
  const args = o.entry === "run"
    ? ["run", ...perms, join(distDeno, "main.mjs")]
    : ["serve", "--host", "127.0.0.1", "--port", String(port), ...perms, join(distDeno, "server.mjs")];
  return spawn(Deno.execPath(), args, {
    url: `http://127.0.0.1:${port}`,
    env: {
      API_KEYS: o.apiKey,
      DATA_DIR: o.dataDir,
      NO_COLOR: "1",
      PORT: String(port),
      HOST: "127.0.0.1",
      ...o.env,
    },
  });
}

const wranglerEnv = (stateDir: string) => ({
  WRANGLER_SEND_METRICS: "false",
  // No request to workers.cloudflare.com for the Request.cf placeholder (runs offline).
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_LOG_PATH: join(stateDir, "logs"),
  NO_COLOR: "1",
  CI: "1",
});

/** Run a wrangler command to completion (e.g. `d1 migrations apply`); throws with its output on failure. */
export async function wrangler(args: string[], o: { stateDir: string; cwd?: string }): Promise<string> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", WRANGLER, ...args],
    cwd: o.cwd ?? ROOT,
    env: wranglerEnv(o.stateDir),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  if (!r.success) throw new Error(`wrangler ${args.join(" ")} failed:\n${out.slice(-4000)}`);
  return out;
}

/** Apply dist/cloudflare/migrations to the local D1 under `stateDir`. */
export function applyMigrations(distCf: string, stateDir: string): Promise<string> {
  return wrangler([
    "d1",
    "migrations",
    "apply",
    "DB",
    "--local",
    "--persist-to",
    stateDir,
    "--config",
    join(distCf, "wrangler.jsonc"),
  ], { stateDir });
}

/** Start `wrangler dev` (local workerd + simulated D1 persisted under `stateDir`). */
export function startWrangler(
  distCf: string,
  o: { apiKey: string; stateDir: string; port?: number; config?: string },
): Spawned {
  const port = o.port ?? freePort();
  return spawn(Deno.execPath(), [
    "run",
    "-A",
    WRANGLER,
    "dev",
    "--config",
    o.config ?? join(distCf, "wrangler.jsonc"),
    "--ip",
    "127.0.0.1",
    "--port",
    String(port),
    "--inspector-port",
    String(freePort()),
    "--persist-to",
    o.stateDir,
    "--var",
    `API_KEYS:${o.apiKey}`,
    "--show-interactive-dev-session=false",
    "--log-level",
    "info",
  ], { url: `http://127.0.0.1:${port}`, cwd: ROOT, env: wranglerEnv(o.stateDir) });
}

/** Path of the workerd binary wrangler 4.164.0 runs (the `workerd` package, same pin, in tools/deno.json). */
export async function workerdBinary(): Promise<string> {
  const m = await import("workerd") as { default: string | { default: string } };
  return typeof m.default === "string" ? m.default : m.default.default;
}

/**
 * Start plain `workerd serve` on dist/cloudflare/worker: the same modules wrangler uploads, no
 * wrangler, no inspector. D1 is replaced by a stub binding (enough for /v1/faces/embed, which does
 * not touch the gallery), so this measures the runtime alone.
 */
export async function startWorkerd(
  distCf: string,
  o: { apiKey: string; stateDir: string; port?: number; inspectorPort?: number; main?: string },
): Promise<Spawned> {
  const port = o.port ?? freePort();
  const dir = join(distCf, "worker");
  const main = o.main ?? "worker.mjs";
  const modules: string[] = [];
  // capnp `embed` paths are relative to the config file.
  const fromCfg = (p: string) => relative(o.stateDir, join(dir, p));
  const walk = (sub: string) => {
    for (const e of Deno.readDirSync(join(dir, sub))) {
      const p = sub ? `${sub}/${e.name}` : e.name;
      if (e.isDirectory) walk(p);
      else if (p === main || p.endsWith(".mjs")) continue;
      else if (p.endsWith(".wasm")) modules.push(`(name = "${p}", wasm = embed "${fromCfg(p)}")`);
      else if (/\.(onnx|safetensors)$/.test(p)) modules.push(`(name = "${p}", data = embed "${fromCfg(p)}")`);
    }
  };
  walk("");
  const stub = "export default function () { const no = () => { throw new Error('bench stub: no D1'); }; " +
    "return { prepare: no, batch: no }; }";
  const capnp = `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .w) ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],
  extensions = [ (modules = [ (name = "edge-bench:d1-stub", internal = true, esModule = ${
    JSON.stringify(stub)
  }) ]) ],
);
const w :Workerd.Worker = (
  modules = [
    (name = "${main}", esModule = embed "${fromCfg(main)}"),
    ${modules.join(",\n    ")}
  ],
  compatibilityDate = "2026-11-01",
  bindings = [
    (name = "API_KEYS", text = "${o.apiKey}"),
    (name = "DB", wrapped = (moduleName = "edge-bench:d1-stub")),
  ],
);
`;
  const cfg = join(o.stateDir, "workerd.capnp");
  await Deno.mkdir(o.stateDir, { recursive: true });
  await Deno.writeTextFile(cfg, capnp);
  const inspect = o.inspectorPort ? [`--inspector-addr=127.0.0.1:${o.inspectorPort}`] : [];
  return spawn(await workerdBinary(), ["serve", "--experimental", ...inspect, cfg], {
    url: `http://127.0.0.1:${port}`,
  });
}

/**
 * V8 heap of the worker's isolate through workerd's inspector (`Runtime.getHeapUsage`): what counts
 * against the Workers 128 MB isolate limit, together with the wasm memory (not included here).
 */
export async function isolateHeap(inspectorPort: number): Promise<{ usedSize: number; totalSize: number }> {
  const list = await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json();
  const ws = new WebSocket(list[0].webSocketDebuggerUrl);
  try {
    await new Promise((ok, bad) => (ws.onopen = ok, ws.onerror = bad));
    const reply = new Promise<{ result: { usedSize: number; totalSize: number } }>((ok) =>
      ws.onmessage = (e) => ok(JSON.parse(e.data))
    );
    ws.send(JSON.stringify({ id: 1, method: "Runtime.getHeapUsage" }));
    return (await reply).result;
  } finally {
    ws.close();
  }
}
