/**
 * deno task distill --teacher <bundle> --images <folder> --out <student.safetensors>
 *                   [--model faces-repmlp] [--align detect|none] [--max-seconds S] [--resume] …
 *
 * Trains a kit face model to reproduce a teacher's L2-normalised embedding on unlabelled face
 * photos (tools/train/distill.ts); the output is a training checkpoint that `deno task convert`
 * takes unchanged (e.g. --dtype int8).
 */
import cliProgress from "cli-progress";
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import { type DistillHooks, runDistill } from "../train/distill_run.ts";
import { main, parseCli, parseJsonObject } from "./_cli.ts";
import { RUN_FLAGS, runOptions } from "./_train_cli.ts";

const USAGE =
  `usage: deno task distill --teacher <bundle> --images <folder> --out <student.safetensors> [options]

  --teacher FILE   face-embedding bundle whose embedding the student learns (run once per face, ORT wasm)
  --images DIR     face photos, no labels (searched recursively for .png/.jpg)
  --crops DIR      and/or ready face crops (used as they are, whatever --align says)
  --align MODE     detect (default): every face the detector finds, aligned on 5 landmarks;
                   none: each file is already a face crop
  --model PRESET   student preset (default faces-repmlp); its embedding size is set to the teacher's
  --kwargs JSON    override the preset's architecture kwargs
  --epochs N  --max-seconds S  --max-steps N  --batch B  --lr LR (default 0.1)  --seed N
  --raw-cosine     plain cosine loss (default: cosine of embeddings centred on the mean teacher
                   embedding, so the shared component does not dominate)
  --hold-out F     fraction of source images held out for the student-vs-teacher cosine (default 0.1)
  --backend        auto|webgpu|wasm|cpu for the student (default auto: webgpu → wasm → cpu)
  --resume         continue from <out>.resume.safetensors (teacher embeddings are always reused from
                   <out>.teacher.safetensors when it was made for the same teacher and images)
  --checkpoint-seconds S  (default 300)   --quiet

Writes <out>, <out>.log.jsonl, <out>.curves.svg, <out>.resume.safetensors, <out>.teacher.safetensors.`;

await main(async () => {
  const { values: v } = parseCli(USAGE, {
    teacher: { type: "string" },
    images: { type: "string" },
    crops: { type: "string" },
    align: { type: "string", default: "detect" },
    model: { type: "string", short: "m", default: "faces-repmlp" },
    kwargs: { type: "string" },
    out: { type: "string", short: "o" },
    ...RUN_FLAGS,
    "hold-out": { type: "string", default: "0.1" },
    "raw-cosine": { type: "boolean", default: false },
  });
  if (!v.teacher || !(v.images || v.crops) || !v.out) {
    throw new InvalidArgumentError("--teacher, --images (or --crops) and --out are required", USAGE);
  }
  if (v.align !== "detect" && v.align !== "none") {
    throw new InvalidArgumentError(`--align must be detect or none, got '${v.align}'`);
  }
  const holdOut = Number(v["hold-out"]);
  if (!(holdOut >= 0 && holdOut < 1)) throw new InvalidArgumentError("--hold-out must be in [0, 1)");
  const kwargs = parseJsonObject(v.kwargs, "--kwargs", '{"hs": [8, 8]}');
  const tty = !v.quiet && Deno.stdout.isTerminal();
  const bar = new cliProgress.SingleBar({
    format: "{phase} [{bar}] {value}/{total} {loss} {lr} ETA {eta_formatted}",
    hideCursor: true,
  }, cliProgress.Presets.shades_classic);
  let phase = "";
  const hooks: DistillHooks = {
    log: (l) => console.log(l),
    phase: (name, total) => {
      phase = name;
      if (tty) bar.start(total, 0, { phase, loss: "", lr: "" });
    },
    tick: (d, info) => {
      if (tty) {
        bar.update(d, { phase, loss: info ? `loss ${info.loss}` : "", lr: info ? `lr ${info.lr}` : "" });
      } else if (!v.quiet && info && d % 50 === 0) {
        console.log(`${phase} step ${d} loss ${info.loss} lr ${info.lr}`);
      }
    },
    endPhase: () => tty && bar.stop(),
  };
  const r = await runDistill({
    teacher: v.teacher,
    images: v.images,
    crops: v.crops,
    align: v.align,
    preset: v.model!,
    kwargs,
    out: v.out,
    ...runOptions(v),
    holdOut,
    centred: !v["raw-cosine"],
    detector: async () => (await import("../data/faceapi_detect.ts")).faceApiDetector(),
  }, hooks);
  console.log(
    `cosine   student vs teacher on ${r.heldOutFaces} held-out faces: ${r.after.mean.toFixed(4)} ` +
      `(before ${r.before.mean.toFixed(4)}; a constant output: ${
        r.baseline.toFixed(4)
      }; centred on the mean teacher embedding ${
        r.after.centred.toFixed(4)
      }, a constant: 0; 10th percentile ${r.after.p10.toFixed(4)}, min ${r.after.min.toFixed(4)}); on the ${
        r.faces - r.heldOutFaces
      } training faces ${r.train.mean.toFixed(4)}`,
  );
  console.log(
    `saved    ${v.out} after ${r.steps} steps, ${
      r.seconds.toFixed(0)
    } s (convert it: deno task convert ${v.out} --out student.int8.safetensors --dtype int8)`,
  );
});
