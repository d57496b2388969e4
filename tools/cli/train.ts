/**
 * deno task train --model <preset> [--dataset <spec>] [--epochs N] [--max-seconds S]
 *                 [--backend auto|webgpu|wasm|cpu] --out <checkpoint.safetensors> [--resume]
 *
 * Trains a kit model with tfjs and writes a training-time checkpoint with the official PyTorch key
 * names (so `deno task convert <checkpoint> --out <bundle>` takes it unchanged, no --arch needed),
 * a JSON-lines log, a training-curves SVG and a resume file beside it.
 */
import cliProgress from "cli-progress";
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import { fit } from "../train/fit.ts";
import { TRAIN_PRESETS } from "../train/presets.ts";
import { main, parseCli, parseJsonObject } from "./_cli.ts";
import { RUN_FLAGS, runOptions } from "./_train_cli.ts";

const USAGE = `usage: deno task train --model <preset> --out <checkpoint.safetensors> [options]

  --model        preset (architecture + recipe):
${Object.entries(TRAIN_PRESETS).map(([k, p]) => `                   ${k.padEnd(26)} ${p.doc}`).join("\n")}
  --dataset      fashion-mnist[:DIR] | folder:PATH | synthetic-faces[:IDENTITIES]  (default: the preset's)
  --epochs N     epochs (default: the preset's)
  --max-seconds S  wall-clock budget; the cosine schedule is compressed to end within it
  --max-steps N  stop after N optimiser steps (the schedule is fitted to them)
  --batch B      batch size        --lr LR   base learning rate     --seed N   seed (default 0)
  --backend      auto|webgpu|wasm|cpu (default auto: webgpu → wasm → cpu)
  --resume       continue from <out>.resume.safetensors (same preset/dataset)
  --init CKPT    start from the weights of a checkpoint (new schedule: fine-tuning)
  --kwargs JSON  override the preset's architecture kwargs, e.g. '{"hs": [8, 8]}' for 32×32 images
  --checkpoint-seconds S  save every S seconds (default 300) as well as after every epoch
  --quiet        no progress bar

Writes <out>, <out>.log.jsonl, <out>.curves.svg and <out>.resume.safetensors.`;

await main(async () => {
  const { values } = parseCli(USAGE, {
    model: { type: "string", short: "m" },
    dataset: { type: "string", short: "d" },
    ...RUN_FLAGS,
    out: { type: "string", short: "o" },
    init: { type: "string" },
    kwargs: { type: "string" },
  });
  if (!values.model) throw new InvalidArgumentError("--model <preset> is required", USAGE);
  if (!values.out) throw new InvalidArgumentError("--out <checkpoint.safetensors> is required");
  // Ctrl-C (or SIGTERM) once: stop after this step with a resumable checkpoint; twice: abort.
  const stop = new AbortController();
  const onSig = () => {
    if (stop.signal.aborted) Deno.exit(130);
    stop.abort();
    console.error("\ninterrupt: saving a resumable checkpoint (Ctrl-C again to abort)");
  };
  Deno.addSignalListener("SIGINT", onSig);
  if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", onSig);

  const tty = !values.quiet && Deno.stdout.isTerminal();
  const bar = new cliProgress.SingleBar({
    format: "epoch {ep} [{bar}] {value}/{total} | loss {loss} | {ips} img/s | lr {lr} | ETA {eta_formatted}",
    hideCursor: true,
    etaBuffer: 50,
  }, cliProgress.Presets.shades_classic);
  const r = await fit({
    preset: values.model,
    out: values.out,
    dataset: values.dataset,
    ...runOptions(values),
    init: values.init,
    kwargs: parseJsonObject(values.kwargs, "--kwargs", '{"hs": [8, 8]}'),
    signal: stop.signal,
    onProgress: tty
      ? (p) => {
        if (p.kind === "epoch-start") {
          bar.start(p.stepsPerEpoch, p.stepInEpoch, {
            ep: `${p.epoch + 1}/${p.epochs}`,
            loss: "-",
            ips: "-",
            lr: "-",
          });
        } else if (p.kind === "step") {
          bar.update(p.stepInEpoch, { loss: p.loss.toFixed(4), ips: p.ips.toFixed(0), lr: p.lr.toFixed(4) });
        } else bar.stop();
      }
      : values.quiet
      ? () => {}
      : undefined,
  });
  if (!r.finished) console.log(`stopped at step ${r.step}; continue with the same command plus --resume`);
});
