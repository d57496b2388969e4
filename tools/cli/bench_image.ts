/**
 * `deno task bench:image`: the request decode path on phone-sized JPEGs, side by side in one run.
 * Fixtures are made at run time from a real photo in `@vladmandic/face-api` (demo/sample1.jpg, upscaled
 * by PIL to 4032×3024 and 1152×864, q90; plus a progressive 12 MP copy). For each file:
 *   ours   open → whole image at detector scale (short side ≥ 256) → face region at 2× a 112² crop
 *   PIL    Debian python3-pil: `Image.draft` to the same detector size (libjpeg DCT scaling) + load,
 *          and a full-size decode for reference
 *   memory peak RSS above idle of one request, in a fresh child process (VmHWM, reset before it), and
 *          RSS above idle after a burst of 10 requests and a GC
 * Wall and CPU time are both shown: on a shared machine the CPU time is the steadier figure.
 * Times are medians of `--runs` warm runs (first, cold run shown apart). Stages are a list, so later
 * columns (detect → align → embed) are one more entry in STAGES.
 *
 *   deno task bench:image [--runs 7] [--json]
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { openImage } from "../../runtime/src/image/mod.ts";

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "7" },
    json: { type: "boolean", default: false },
    "child-mem": { type: "string" },
  },
});

const PYTHON = "/usr/bin/python3";
/** Detector input: the whole image with its short side at least this. */
const DETECTOR_SHORT_SIDE = 256;
/** A face about 1/8 of the image width, aligned into 112², decoded at 2× the crop's resolution. */
const faceBox = (w: number, h: number) => ({ x: w * 0.45, y: h * 0.3, w: w / 8, h: w / 8 });
const REGION_SHORT_SIDE = 224;

/** One request's image work; later: detect, align, embed. */
const STAGES: { name: string; run: (bytes: Uint8Array) => Promise<void> }[] = [
  {
    name: "decode (detector scale + face region)",
    run: async (bytes) => {
      const src = await openImage(bytes);
      await src.decode({ targetShortSide: DETECTOR_SHORT_SIDE });
      await src.decodeRegion(faceBox(src.width, src.height), { targetShortSide: REGION_SHORT_SIDE });
    },
  },
];

function status(): { rss: number; hwm: number } {
  const s = Deno.readTextFileSync("/proc/self/status");
  const kb = (k: string) => Number(s.match(new RegExp(`^${k}:\\s+(\\d+)`, "m"))?.[1] ?? NaN);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
}

/** Child mode: peak RSS of one request above idle, and RSS after a burst, in MiB. */
async function childMem(file: string): Promise<void> {
  const bytes = await Deno.readFile(file);
  const gc = (globalThis as { gc?: () => void }).gc;
  // Warm the code paths on a small copy so JIT memory is idle memory, not request memory.
  const warm = await Deno.readFile(file.replace(/[^/]+$/, "p1.jpg"));
  for (let i = 0; i < 3; i++) for (const s of STAGES) await s.run(warm);
  gc?.();
  Deno.writeTextFileSync("/proc/self/clear_refs", "5"); // reset VmHWM to the current RSS
  const idle = status().rss;
  for (const s of STAGES) await s.run(bytes);
  const peak = status().hwm - idle;
  for (let i = 0; i < 10; i++) for (const s of STAGES) await s.run(bytes);
  // Array buffers are released by a background sweeper after a GC: give it a moment, twice.
  for (let i = 0; i < 2; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 500));
  }
  console.log(
    JSON.stringify({ idle, peak, afterBurst: status().rss - idle }),
  );
}

async function python(script: string, args: string[]): Promise<string> {
  const o = await new Deno.Command(PYTHON, {
    args: ["-c", script, ...args],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!o.success) {
    throw new Error(`python3 failed (python3-pil installed?): ${new TextDecoder().decode(o.stderr)}`);
  }
  return new TextDecoder().decode(o.stdout);
}

const MAKE = `
import sys
from PIL import Image
src, out = sys.argv[1], sys.argv[2]
im = Image.open(src).convert("RGB")
im.resize((4032, 3024), Image.BICUBIC).save(out + "/p12.jpg", quality=90)
im.resize((4032, 3024), Image.BICUBIC).save(out + "/p12prog.jpg", quality=90, progressive=True)
im.resize((1152, 864), Image.BICUBIC).save(out + "/p1.jpg", quality=90)
`;

const PIL_TIME = `
import sys, time, statistics
from PIL import Image
path, short, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def draft():
    im = Image.open(path); w, h = im.size
    k = max(1, min(w, h) // short)
    im.draft("RGB", (w // k, h // k)); im.load()
def full():
    im = Image.open(path); im.load()
out = []
for f in (draft, full):
    ts, cs = [], []
    for i in range(runs + 1):
        t, c = time.perf_counter(), time.process_time(); f()
        ts.append((time.perf_counter() - t) * 1000); cs.append((time.process_time() - c) * 1000)
    out += [statistics.median(ts[1:]), statistics.median(cs[1:])]
print(*out)
`;

/** Process CPU time in ms (all threads): robust to other jobs on a shared machine, unlike wall time. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

const median = (v: number[]) => v.slice().sort((x, y) => x - y)[Math.floor(v.length / 2)];

async function timeOurs(
  bytes: Uint8Array,
  runs: number,
): Promise<{ cold: number; warm: number; cpu: number }> {
  const once = async () => {
    const t = performance.now(), c = cpuMs();
    for (const s of STAGES) await s.run(bytes);
    return [performance.now() - t, cpuMs() - c];
  };
  const [cold] = await once();
  const ts: number[] = [], cs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const [t, c] = await once();
    ts.push(t), cs.push(c);
  }
  return { cold, warm: median(ts), cpu: median(cs) };
}

async function main() {
  if (a["child-mem"]) return await childMem(a["child-mem"]);
  const runs = Math.max(1, Number(a.runs));
  const dir = await Deno.makeTempDir({ prefix: "bench_image_" });
  try {
    const photo = new URL(import.meta.resolve("@vladmandic/face-api/demo/sample1.jpg")).pathname;
    await python(MAKE, [photo, dir]);
    const files = [
      { name: "12 MP 4032×3024 q90", path: `${dir}/p12.jpg` },
      { name: "1 MP 1152×864 q90", path: `${dir}/p1.jpg` },
      { name: "12 MP progressive", path: `${dir}/p12prog.jpg` },
    ];
    // Warm the JIT once on the small file so "cold" below is a first request of a new file, not of the process.
    await timeOurs(await Deno.readFile(files[1].path), 1);
    const rows = [];
    for (const f of files) {
      const bytes = await Deno.readFile(f.path);
      const ours = await timeOurs(bytes, runs);
      const [pilDraft, pilDraftCpu, pilFull] =
        (await python(PIL_TIME, [f.path, String(DETECTOR_SHORT_SIDE), String(runs)]))
          .trim().split(" ").map(Number);
      const mem = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--v8-flags=--expose-gc",
          new URL(import.meta.url).pathname,
          "--child-mem",
          f.path,
        ],
        stdout: "piped",
        stderr: "inherit",
      }).output();
      const m = JSON.parse(new TextDecoder().decode(mem.stdout));
      rows.push({ file: f.name, kb: bytes.length / 1024, ...ours, pilDraft, pilDraftCpu, pilFull, ...m });
    }
    const cpu = Deno.readTextFileSync("/proc/cpuinfo").match(/model name\s*:\s*(.*)/)?.[1] ?? "?";
    const load = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
    if (a.json) {
      return console.log(JSON.stringify({ date: new Date().toISOString(), cpu, load, rows }, null, 2));
    }
    console.log(
      `bench:image ${
        new Date().toISOString().slice(0, 10)
      } on ${cpu} (${navigator.hardwareConcurrency} cores, load ${load})`,
    );
    console.log(`stages: ${STAGES.map((s) => s.name).join(" → ")}; ${runs} warm runs, median\n`);
    console.log(
      "| file | size | ours ms (wall) | ours ms (CPU) | first request ms | PIL draft ms (wall) | PIL draft ms (CPU) | PIL full ms | ours / PIL draft (wall, CPU) | peak RSS MiB above idle | RSS MiB after burst+GC |",
    );
    console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    const f1 = (v: number) => v.toFixed(1);
    for (const r of rows) {
      const cells = [
        r.file,
        `${r.kb.toFixed(0)} KB`,
        f1(r.warm),
        f1(r.cpu),
        f1(r.cold),
        f1(r.pilDraft),
        f1(r.pilDraftCpu),
      ];
      cells.push(f1(r.pilFull), `${f1(r.warm / r.pilDraft)}×, ${f1(r.cpu / r.pilDraftCpu)}×`);
      cells.push(f1(r.peak), f1(r.afterBurst));
      console.log(`| ${cells.join(" | ")} |`);
    }
    const [r12, r1] = rows;
    console.log(
      `\n12 MP vs PIL draft: ${f1(r12.warm / r12.pilDraft)}× wall, ${
        f1(r12.cpu / r12.pilDraftCpu)
      }× CPU (goal ≤ 10×); ` +
        `12 MP vs our 1 MP: ${f1(r12.warm / r1.warm)}× wall, ${f1(r12.cpu / r1.cpu)}× CPU (goal ≤ 3×)`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

await main();
