// The CLI tasks as a user runs them: convert → inspect → predict on every shared case, dtype sizes,
// and the error paths (each must exit non-zero with a message saying what is wrong).
import assert from "node:assert/strict";
import { CASES, loadCase } from "./_refdata.ts";
import { readNpy, writeNpy } from "../../runtime/src/io/npy.ts";
import { writeSafetensors } from "../../runtime/src/io/safetensors.ts";
import { buildModel } from "../../runtime/src/arch/registry.ts";
import { randomStateDict } from "../../runtime/src/random.ts";
import { maxAbsDiff, toF32 } from "../../runtime/src/tensor.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function task(script: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}tools/cli/${script}.ts`, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const tmp = await Deno.makeTempDir({ prefix: "repmlp-cli-" });

Deno.test({
  name: "cli: convert → predict reproduces every shared case (train and deploy checkpoints)",
  async fn(t) {
    for (const name of CASES) {
      await t.step(name, async () => {
        const c = loadCase(name);
        const x = `${tmp}/${name}.x.npy`;
        await Deno.writeFile(x, writeNpy(c.input));
        for (const [ckpt, expected] of [["train", c.outTrain], ["deploy", c.outDeploy]] as const) {
          const bundle = `${tmp}/${name}.${ckpt}.safetensors`;
          const cv = await task("convert", [
            new URL(`${ckpt}.pth`, c.dir).pathname,
            "--arch",
            c.cls,
            "--kwargs",
            JSON.stringify(c.kwargs),
            "--out",
            bundle,
          ]);
          assert.equal(cv.code, 0, cv.stderr);
          assert.match(cv.stdout, ckpt === "train" ? /max abs diff \d/ : /already deploy-mode/);
          // The pure-TS oracle and the portable ORT-web WASM runtime, as the "done" criteria ask.
          for (const backend of ["reference", "wasm"]) {
            const y = `${tmp}/${name}.${ckpt}.${backend}.y.npy`;
            const pr = await task("predict", [bundle, "--input", x, "--out", y, "--backend", backend]);
            assert.equal(pr.code, 0, pr.stderr);
            const out = toF32(readNpy(await Deno.readFile(y)));
            const err = maxAbsDiff(out.data, expected);
            assert.ok(
              err < (backend === "reference" ? 1e-5 : 1e-4),
              `${ckpt}/${backend}: max abs err ${err}`,
            );
          }
        }
      });
    }
  },
});

Deno.test("cli: fp16/int8 bundles of a block with a large fc3 are small and report their error", async () => {
  const desc = buildModel("RepMLPBlock", {
    in_channels: 64,
    out_channels: 64,
    h: 14,
    w: 14,
    reparam_conv_k: [1, 3],
    num_sharesets: 4,
  });
  const ckpt = `${tmp}/big.safetensors`;
  await Deno.writeFile(ckpt, writeSafetensors(randomStateDict(desc, "train", 3)));
  const sizes: Record<string, number> = {};
  for (const dtype of ["fp32", "fp16", "int8"]) {
    const out = `${tmp}/big.${dtype}.safetensors`;
    const r = await task("convert", [ckpt, "--arch", "RepMLPBlock", "--dtype", dtype, "--out", out]);
    assert.equal(r.code, 0, r.stderr);
    sizes[dtype] = (await Deno.stat(out)).size;
    if (dtype !== "fp32") {
      const m = r.stdout.match(/relative (\S+)/);
      assert.ok(m, r.stdout);
      const rel = Number(m[1]);
      assert.ok(rel < (dtype === "fp16" ? 5e-3 : 5e-2), `${dtype} relative error ${rel}`);
    }
    const ins = await task("inspect", [out]);
    assert.equal(ins.code, 0, ins.stderr);
    assert.match(ins.stdout, /verified/);
  }
  assert.ok(sizes.fp16 <= 0.51 * sizes.fp32, `fp16 ${sizes.fp16} vs fp32 ${sizes.fp32}`);
  assert.ok(sizes.int8 <= 0.27 * sizes.fp32, `int8 ${sizes.int8} vs fp32 ${sizes.fp32}`);
});

Deno.test("cli: bad input is a clear error with a non-zero exit", async (t) => {
  const c = loadCase("net_block_c8_S1_p2x2_k13_gp4");
  const train = new URL("train.pth", c.dir).pathname;
  const cases: [string, string, string[], RegExp][] = [
    ["wrong --arch for the keys", "convert", [
      train,
      "--arch",
      "RepMLP",
      "--kwargs",
      '{"in_channels": 8, "out_channels": 8, "H": 8, "W": 8, "h": 4, "w": 4, "reparam_conv_k": [1, 3]}',
      "--out",
      `${tmp}/x`,
    ], /arch_mismatch/],
    ["unknown --arch", "convert", [train, "--arch", "ResNet50", "--out", `${tmp}/x`], /unknown --arch/],
    [
      "bad --kwargs JSON",
      "convert",
      [train, "--arch", "RepMLPBlock", "--kwargs", "{h:", "--out", `${tmp}/x`],
      /JSON/,
    ],
    ["contradicting kwargs", "convert", [
      train,
      "--arch",
      "RepMLPBlock",
      "--kwargs",
      '{"h": 2, "w": 8}',
      "--out",
      `${tmp}/x`,
    ], /checkpoint says/],
    [
      "missing file",
      "convert",
      [`${tmp}/nope.pth`, "--arch", "RepMLPBlock", "--out", `${tmp}/x`],
      /not found/,
    ],
    ["no --arch for an official checkpoint", "convert", [train, "--out", `${tmp}/x`], /--arch/],
    [
      "bad dtype",
      "convert",
      [train, "--arch", "RepMLPBlock", "--dtype", "int4", "--out", `${tmp}/x`],
      /--dtype/,
    ],
  ];
  for (const [label, script, args, re] of cases) {
    await t.step(label, async () => {
      const r = await task(script, args);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, re);
    });
  }
  await t.step("tampered bundle fails its hash", async () => {
    const b = `${tmp}/tamper.safetensors`;
    assert.equal((await task("convert", [train, "--arch", "RepMLPBlock", "--out", b])).code, 0);
    const bytes = await Deno.readFile(b);
    bytes[bytes.length - 5] ^= 0x40;
    await Deno.writeFile(b, bytes);
    const r = await task("inspect", [b]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /integrity|SHA-256/);
  });
  await t.step("predict: wrong input shape", async () => {
    const b = `${tmp}/ok.safetensors`;
    assert.equal((await task("convert", [train, "--arch", "RepMLPBlock", "--out", b])).code, 0);
    const x = `${tmp}/bad.npy`;
    await Deno.writeFile(x, writeNpy({ dtype: "float32", shape: [1, 3, 8, 8], data: new Float32Array(192) }));
    const r = await task("predict", [b, "--input", x, "--out", `${tmp}/y.npy`]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /invalid_input/);
  });
});

globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(tmp, { recursive: true });
  } catch { /* already gone */ }
});
