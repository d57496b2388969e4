/**
 * deno task bench:train [--presets fmnist-repmlp,faces-repmlp] [--backends wasm,cpu,webgpu]
 *                       [--steps N] [--torch]
 *
 * Training throughput (forward + backward + SGD step, images/s) of the kit's tfjs graph per
 * backend, and optionally the same network in PyTorch CPU (Debian python3-torch, 1 thread — the
 * tfjs wasm backend is single-threaded too) via scripts/bench_train_torch.py.
 */
import process from "node:process";
import { buildModel } from "../../runtime/src/arch/mod.ts";
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import { type BackendName, initBackend } from "../train/tfjs_backend.ts";
import { TrainGraph } from "../train/tfjs_graph.ts";
import { getPreset } from "../train/presets.ts";
import { AMSoftmax, crossEntropy, SGD, trainStep } from "../train/trainer.ts";
import { main, parseCli } from "./_cli.ts";

const USAGE = `usage: deno task bench:train [--presets fmnist-repmlp,faces-repmlp] [--backends wasm,cpu]
                            [--steps 8] [--torch] [--torch-threads 1]`;

await main(async () => {
  const { values } = parseCli(USAGE, {
    presets: { type: "string", default: "fmnist-repmlp,faces-repmlp" },
    backends: { type: "string", default: "wasm,cpu" },
    steps: { type: "string", default: "8" },
    torch: { type: "boolean", default: false },
    "torch-threads": { type: "string", default: "1" },
    "one": { type: "string" }, // internal: run a single preset:backend in this process
  });
  const steps = Number(values.steps);
  if (!Number.isInteger(steps) || steps < 1) {
    throw new InvalidArgumentError("--steps must be a positive integer");
  }
  if (values.one) {
    // Child mode: one backend per process (tfjs backends do not share tensors).
    const [name, be] = values.one.split(":");
    const p = getPreset(name);
    const backend = await initBackend(be as BackendName);
    const desc = buildModel(p.arch, p.kwargs);
    const g = new TrainGraph(desc);
    const [C, H, W] = desc.input as number[];
    const B = p.batch;
    const x = new Float32Array(B * C * H * W).map(() => Math.random() * 2 - 1);
    const classes = p.task === "embed" ? 100 : Number(p.kwargs.num_class ?? 10);
    const y = Int32Array.from({ length: B }, () => Math.floor(Math.random() * classes));
    const head = p.task === "embed" ? new AMSoftmax(classes, 128) : null;
    const loss = head
      ? (o: Parameters<AMSoftmax["loss"]>[0], l: Parameters<AMSoftmax["loss"]>[1]) => head.loss(o, l)
      : (o: Parameters<typeof crossEntropy>[0], l: Parameters<typeof crossEntropy>[1]) =>
        crossEntropy(o, l, 0.1);
    const opt = new SGD();
    await trainStep(g, opt, head ? [head.weight] : [], x, [B, C, H, W], y, loss, 0.01); // warm-up
    const c0 = process.cpuUsage(), t0 = performance.now();
    for (let i = 0; i < steps; i++) {
      await trainStep(g, opt, head ? [head.weight] : [], x, [B, C, H, W], y, loss, 0.01);
    }
    const wall = (performance.now() - t0) / 1000, cu = process.cpuUsage(c0);
    console.log(JSON.stringify({
      preset: name,
      backend,
      batch: B,
      img_per_s: (B * steps) / wall,
      img_per_cpu_s: (B * steps) / ((cu.user + cu.system) / 1e6),
    }));
    return;
  }
  const rows: Record<string, unknown>[] = [];
  for (const name of values.presets!.split(",")) {
    const p = getPreset(name);
    for (const be of values.backends!.split(",")) {
      const r = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL(import.meta.url).pathname,
          "--one",
          `${name}:${be}`,
          "--steps",
          String(steps),
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const out = new TextDecoder().decode(r.stdout).trim().split("\n").at(-1) ?? "";
      if (r.code !== 0 || !out.startsWith("{")) {
        rows.push({ preset: name, backend: be, error: new TextDecoder().decode(r.stderr).split("\n")[0] });
      } else rows.push(JSON.parse(out));
      console.error(JSON.stringify(rows.at(-1)));
    }
    if (values.torch) {
      const ir = await Deno.makeTempFile({ suffix: ".json" });
      const desc = buildModel(p.arch, p.kwargs);
      await Deno.writeTextFile(ir, JSON.stringify({ root: desc.root, input: desc.input }));
      const r = await new Deno.Command("/usr/bin/python3", {
        args: [
          new URL("./bench_train_torch.py", import.meta.url).pathname,
          ir,
          String(p.batch),
          String(steps),
          values["torch-threads"]!,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const out = new TextDecoder().decode(r.stdout).trim();
      rows.push(
        r.code === 0 ? { preset: name, backend: `pytorch-cpu`, ...JSON.parse(out) } : {
          preset: name,
          backend: "pytorch-cpu",
          error: new TextDecoder().decode(r.stderr).trim().split("\n").at(-1),
        },
      );
      console.error(JSON.stringify(rows.at(-1)));
      await Deno.remove(ir);
    }
  }
  console.log("| model | backend | batch | img/s (fwd+bwd+step) | img per CPU-second |");
  console.log("|---|---|---|---|---|");
  for (const r of rows) {
    const f = (v: unknown) => (typeof v === "number" ? v.toFixed(1) : "–");
    console.log(
      `| ${r.preset} | ${r.backend}${r.threads ? ` (${r.threads} thread)` : ""} | ${r.batch ?? "–"} | ${
        r.error ? `failed: ${r.error}` : f(r.img_per_s)
      } | ${f(r.img_per_cpu_s)} |`,
    );
  }
});
