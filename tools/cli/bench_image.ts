/**
 * `deno task bench:image`: one face request's server path on phone-sized JPEGs, side by side in one
 * run. Fixtures are made at run time from a real photo in `@vladmandic/face-api` (demo/sample1.jpg, a
 * group photo, upscaled by PIL to 4032×3024 and 1152×864, q90; plus a progressive 12 MP copy).
 * For each file, the stages of `POST /v1/faces/embed` without client landmarks — the functions
 * runtime/src/server/input.ts and face_input.ts call, with serve's default face model and detector
 * (weights/manifest.json) on ORT wasm, 1 thread:
 *   decode   open + whole image at the DCT scale the detector's first pass asks for
 *   detect   findFaces (largest face: the whole-image windows; a fallback pyramid decodes again, counted here)
 *   refine   refineInSource: region decode around the face + one detector run
 *   align    cropPixels on the model's own template (region decode at 2× the crop) + normalise
 *   embed    the face model's forward (batch 1)
 *   PIL      Debian python3-pil: `Image.draft` to the detector size (libjpeg DCT scaling) + load,
 *            and a full-size decode for reference
 *   memory   peak RSS above idle of one request, in a fresh child process (VmHWM, reset before it;
 *            models loaded and warmed before), and RSS above idle after a burst of 10 requests and a GC
 * Wall and CPU time are both shown: on a shared machine the CPU time is the steadier figure.
 * Times are medians of `--runs` warm runs (first, cold run shown apart).
 *
 *   deno task bench:image [--runs 5] [--json]
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { cropPixels, type ImageSource, normalizePixels, openImage } from "../../runtime/src/image/mod.ts";
import { type Face, FaceDetector, findFaces, type ScaledSource } from "../../runtime/src/face/detect.ts";
import { refineInSource } from "../../runtime/src/server/face_input.ts";
import { pickFace } from "../../runtime/src/server/face_select.ts";
import { chooseDetector, chooseModels, readManifest } from "../../runtime/src/server/manifest.ts";
import { servedModelFromBundle } from "../../runtime/src/server/bundles.ts";
import type { FaceModel } from "../../runtime/src/server/served_model.ts";
import type { Point } from "../../runtime/src/image/mod.ts";

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "5" },
    json: { type: "boolean", default: false },
    "child-mem": { type: "string" },
  },
});

const PYTHON = "/usr/bin/python3";
/** PIL's reference decode: short side at least this (what the detector's first pass decodes: long side ≥ 512). */
const DETECTOR_SHORT_SIDE = 384;
/** serve's default MAX_PIXELS. */
const MAX_PIXELS = 40_000_000;

/** The loaded models of a request, as `deno task serve` loads them. */
interface Models {
  det: FaceDetector;
  face: FaceModel;
}

async function loadModels(): Promise<Models> {
  const manifestPath = new URL("../../weights/manifest.json", import.meta.url).pathname;
  const [m] = await chooseModels({ manifestPath, classifiers: [], noClassifier: true, dtype: "int8" });
  const face = (await servedModelFromBundle(await Deno.readFile(m.path), m.entry, { backend: "wasm" }))
    .model as FaceModel;
  const d = chooseDetector(await readManifest(manifestPath), manifestPath);
  if (!d) throw new Error("no face detector in weights/manifest.json");
  const det = await FaceDetector.create(await Deno.readFile(d.path), { backend: "wasm", threads: 1 });
  return { det, face };
}

/** One request's state, passed from stage to stage. */
interface Req {
  bytes: Uint8Array;
  src?: ImageSource;
  /** The whole-image decode the detector asks for first (decoded in the "decode" stage). */
  cached?: { scale: number; value: Awaited<ReturnType<ScaledSource["decode"]>> };
  face?: Face;
  landmarks?: Point[];
  x?: Float32Array;
}

/** findFaces' first pass: the smallest DCT scale with a long side of ≥ 512 px (runtime/src/face/detect.ts). */
const firstScale = (w: number, h: number) =>
  ([0.125, 0.25, 0.5, 1] as const).find((s) => Math.max(w, h) * s >= 512) ?? 1;

/** The stages of one request (input.ts embedFaces → face_input.ts locateFaces → cropPixels → embed). */
const STAGES: { name: string; run: (r: Req, m: Models) => Promise<void> }[] = [
  {
    name: "decode",
    run: async (r) => {
      r.src = await openImage(r.bytes, { maxPixels: MAX_PIXELS });
      const scale = firstScale(r.src.width, r.src.height);
      r.cached = { scale, value: await r.src.decode({ scale }) };
    },
  },
  {
    name: "detect",
    run: async (r, m) => {
      const src = r.src!, c = r.cached!;
      // The decode stage already did findFaces' first decode; any other scale decodes here.
      const scaled: ScaledSource = {
        width: src.width,
        height: src.height,
        decode: (o) => (o.scale === c.scale ? Promise.resolve(c.value) : src.decode(o)),
      };
      r.face = pickFace((await findFaces(m.det, scaled)).faces, 0);
    },
  },
  {
    name: "refine",
    run: async (r, m) => {
      r.landmarks = (await refineInSource(m.det, r.src!, r.face!)).landmarks;
    },
  },
  {
    name: "align",
    run: async (r, m) => {
      const [c, h, w] = m.face.inputSize;
      const px = await cropPixels(r.src!, {
        input: m.face.inputSize,
        landmarks: r.landmarks,
        template: m.face.faceTemplate,
      });
      r.x = normalizePixels(px, c, h * w, m.face.preprocess?.mean, m.face.preprocess?.std);
    },
  },
  {
    name: "embed",
    run: async (r, m) => {
      await m.face.embed(r.x!, 1);
    },
  },
];

async function request(bytes: Uint8Array, m: Models): Promise<void> {
  const r: Req = { bytes };
  for (const s of STAGES) await s.run(r, m);
}

function status(): { rss: number; hwm: number } {
  const s = Deno.readTextFileSync("/proc/self/status");
  const kb = (k: string) => Number(s.match(new RegExp(`^${k}:\\s+(\\d+)`, "m"))?.[1] ?? NaN);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
}

/** Child mode: peak RSS of one request above idle, and RSS after a burst, in MiB. */
async function childMem(file: string): Promise<void> {
  const bytes = await Deno.readFile(file);
  const models = await loadModels();
  const gc = (globalThis as { gc?: () => void }).gc;
  // Warm the code paths on a small copy so JIT memory is idle memory, not request memory.
  const warm = await Deno.readFile(file.replace(/[^/]+$/, "p1.jpg"));
  for (let i = 0; i < 3; i++) await request(warm, models);
  gc?.();
  Deno.writeTextFileSync("/proc/self/clear_refs", "5"); // reset VmHWM to the current RSS
  const idle = status().rss;
  await request(bytes, models);
  const peak = status().hwm - idle;
  for (let i = 0; i < 10; i++) await request(bytes, models);
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

/** Per stage and end to end: wall and CPU ms, medians of `runs` warm requests; `cold` = first request's wall. */
interface Timing {
  cold: number;
  wall: number[];
  cpu: number[];
  total: number;
  totalCpu: number;
}

async function timeOurs(bytes: Uint8Array, runs: number, m: Models): Promise<Timing> {
  const once = async () => {
    const r: Req = { bytes }, wall: number[] = [], cpu: number[] = [];
    for (const s of STAGES) {
      const t = performance.now(), c = cpuMs();
      await s.run(r, m);
      wall.push(performance.now() - t), cpu.push(cpuMs() - c);
    }
    return { wall, cpu };
  };
  const sum = (v: number[]) => v.reduce((x, y) => x + y, 0);
  const cold = sum((await once()).wall);
  const all: { wall: number[]; cpu: number[] }[] = [];
  for (let i = 0; i < runs; i++) all.push(await once());
  return {
    cold,
    wall: STAGES.map((_, k) => median(all.map((o) => o.wall[k]))),
    cpu: STAGES.map((_, k) => median(all.map((o) => o.cpu[k]))),
    total: median(all.map((o) => sum(o.wall))),
    totalCpu: median(all.map((o) => sum(o.cpu))),
  };
}

async function main() {
  if (a["child-mem"]) return await childMem(a["child-mem"]);
  const runs = Math.max(1, Number(a.runs));
  const dir = await Deno.makeTempDir({ prefix: "bench_image_" });
  const models = await loadModels();
  try {
    const photo = new URL(import.meta.resolve("@vladmandic/face-api/demo/sample1.jpg")).pathname;
    await python(MAKE, [photo, dir]);
    const files = [
      { name: "12 MP 4032×3024 q90", path: `${dir}/p12.jpg` },
      { name: "1 MP 1152×864 q90", path: `${dir}/p1.jpg` },
      { name: "12 MP progressive", path: `${dir}/p12prog.jpg` },
    ];
    // Warm the JIT once on the small file so "cold" below is a first request of a new file, not of the process.
    await timeOurs(await Deno.readFile(files[1].path), 1, models);
    const rows = [];
    for (const f of files) {
      const bytes = await Deno.readFile(f.path);
      const ours = await timeOurs(bytes, runs, models);
      const [pilDraft, pilDraftCpu, pilFull] =
        (await python(PIL_TIME, [f.path, String(DETECTOR_SHORT_SIDE), String(runs)]))
          .trim().split(" ").map(Number);
      const mem = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--node-modules-dir=auto",
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
    const stages = STAGES.map((s) => s.name);
    if (a.json) {
      return console.log(
        JSON.stringify({ date: new Date().toISOString(), cpu, load, stages, rows }, null, 2),
      );
    }
    console.log(
      `bench:image ${
        new Date().toISOString().slice(0, 10)
      } on ${cpu} (${navigator.hardwareConcurrency} cores, load ${load})`,
    );
    console.log(
      `request: ${stages.join(" → ")} (face ${models.face.name} ${models.face.inputSize.join("×")}, ` +
        `${models.face.backend}; detector ${models.det.backend} 1 thread); ${runs} warm runs, median; ` +
        `ms as wall / CPU\n`,
    );
    const f1 = (v: number) => v.toFixed(1);
    console.log(
      `| file | size | ${stages.join(" | ")} | request | first request | PIL draft | PIL full | ` +
        `request / PIL draft | idle RSS MiB | peak RSS MiB above idle | RSS MiB after burst+GC |`,
    );
    console.log(`|---|---:|${stages.map(() => "---:|").join("")}---:|---:|---:|---:|---:|---:|---:|---:|`);
    for (const r of rows) {
      const cells = [
        r.file,
        `${r.kb.toFixed(0)} KB`,
        ...stages.map((_, k) => `${f1(r.wall[k])} / ${f1(r.cpu[k])}`),
        `**${f1(r.total)} / ${f1(r.totalCpu)}**`,
        f1(r.cold),
        `${f1(r.pilDraft)} / ${f1(r.pilDraftCpu)}`,
        f1(r.pilFull),
        `${f1(r.total / r.pilDraft)}× / ${f1(r.totalCpu / r.pilDraftCpu)}×`,
        f1(r.idle),
        f1(r.peak),
        f1(r.afterBurst),
      ];
      console.log(`| ${cells.join(" | ")} |`);
    }
    const [r12, r1] = rows;
    console.log(
      `\n12 MP request vs PIL draft decode: ${f1(r12.total / r12.pilDraft)}× wall, ${
        f1(r12.totalCpu / r12.pilDraftCpu)
      }× CPU (goal ≤ 10×); 12 MP vs our 1 MP request: ${f1(r12.total / r1.total)}× wall, ${
        f1(r12.totalCpu / r1.totalCpu)
      }× CPU (goal ≤ 3×)`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
    await models.det.dispose();
  }
}

await main();
