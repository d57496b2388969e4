// The CLI tasks as a user runs them (convert → inspect → predict, spawned once each on one case, and
// their argument errors: non-zero exit, a message saying what is wrong), and, in process, the library
// path they call on every shared case, dtype sizes and precision, and the library's error paths.
import assert from "node:assert/strict";
import { CASES, loadCase } from "./_refdata.ts";
import { runCli as task } from "./cli_testutil.ts";
import { readNpy, writeNpy } from "../../runtime/src/io/npy.ts";
import { buildModel } from "../../runtime/src/arch/registry.ts";
import { randn, randomStateDict } from "../../runtime/src/random.ts";
import { maxAbs, maxAbsDiff, toF32 } from "../../runtime/src/tensor.ts";
import { convertStateDict, exampleInputShape } from "../../runtime/src/convert.ts";
import { bundleFromConversion, loadBundle } from "../../runtime/src/deploy_model.ts";
import { packConversion } from "../../runtime/src/pack.ts";
import { createSession } from "../../runtime/src/backends/mod.ts";
import { forward } from "../../runtime/src/reference.ts";
import { readFileBytes } from "../../runtime/src/io/files.ts";
import { readStateDict } from "../../runtime/src/io/statedict.ts";
import {
  ArchMismatchError,
  IntegrityError,
  InvalidArgumentError,
  InvalidInputError,
} from "../../runtime/src/errors.ts";

const tmp = await Deno.makeTempDir({ prefix: "repmlp-cli-" });

Deno.test("cli: convert → inspect → predict as a user runs them reproduce a shared case", async () => {
  const c = loadCase("r21_repmlp_c16_p2x2_k1357_g4_r4");
  const x = `${tmp}/cli.x.npy`, bundle = `${tmp}/cli.int8.safetensors`, y = `${tmp}/cli.y.npy`;
  await Deno.writeFile(x, writeNpy(c.input));
  const cv = await task("convert", [
    new URL("train.pth", c.dir).pathname,
    "--arch",
    c.cls,
    "--kwargs",
    JSON.stringify(c.kwargs),
    "--dtype",
    "int8",
    "--out",
    bundle,
  ]);
  assert.equal(cv.code, 0, cv.stderr);
  assert.match(cv.stdout, /max abs diff \d/); // the fold check
  const rel = Number(cv.stdout.match(/int8 +output vs fp32: .*relative (\S+)/)?.[1]);
  assert.ok(rel < 5e-2, `int8 relative error reported: ${rel}\n${cv.stdout}`);
  const ins = await task("inspect", [bundle]);
  assert.equal(ins.code, 0, ins.stderr);
  assert.match(ins.stdout, /verified/);
  const pr = await task("predict", [bundle, "--input", x, "--out", y, "--backend", "wasm"]);
  assert.equal(pr.code, 0, pr.stderr);
  const out = toF32(readNpy(await Deno.readFile(y)));
  // Same graph in process on the same bundle: the CLI adds nothing to the numbers.
  const s = await createSession(await loadBundle(await Deno.readFile(bundle)), {
    backend: "wasm",
    log: () => {},
  });
  const ref = await s.run(c.input);
  await s.dispose();
  assert.ok(maxAbsDiff(out.data, ref.data) < 1e-6);
  const err = maxAbsDiff(out.data, c.outTrain), scale = maxAbs(c.outTrain);
  assert.ok(err < 5e-2 * scale, `int8 predict vs official: ${err} (max |out| ${scale})`);
});

Deno.test("convert → bundle → session (what the CLIs call) reproduces every shared case", async (t) => {
  for (const name of CASES) {
    await t.step(name, async () => {
      const c = loadCase(name);
      for (
        const [sd, expected, mode] of [[c.train, c.outTrain, "train"], [
          c.deploy,
          c.outDeploy,
          "deploy",
        ]] as const
      ) {
        const res = convertStateDict(sd, { arch: c.cls, kwargs: c.kwargs });
        assert.equal(res.mode, mode);
        const m = await loadBundle(await bundleFromConversion(res, "fp32"));
        // The pure-TS oracle and the portable ORT-web WASM runtime.
        for (const backend of ["reference", "wasm"] as const) {
          const s = await createSession(m, { backend, log: () => {} });
          const err = maxAbsDiff((await s.run(c.input)).data, expected);
          await s.dispose();
          assert.ok(err < (backend === "reference" ? 1e-5 : 1e-4), `${mode}/${backend}: max abs err ${err}`);
        }
      }
    });
  }
});

Deno.test("bundles: fp16/int8 of a block with a large fc3 are small and within their precision", async () => {
  const desc = buildModel("RepMLPBlock", {
    in_channels: 64,
    out_channels: 64,
    h: 14,
    w: 14,
    reparam_conv_k: [1, 3],
    num_sharesets: 4,
  });
  const res = convertStateDict(randomStateDict(desc, "train", 3), { arch: "RepMLPBlock" });
  const x = randn(exampleInputShape(res.desc, 2), 99);
  const y32 = forward(res.desc, res.deploy, x, "deploy");
  const sizes: Record<string, number> = {};
  for (const dtype of ["fp32", "fp16", "int8"] as const) {
    const bytes = await bundleFromConversion(res, dtype);
    sizes[dtype] = bytes.length;
    const m = await loadBundle(bytes); // verifies the hash
    const rel = maxAbsDiff(forward(m.desc, m.tensors, x, "deploy").data, y32.data) / maxAbs(y32.data);
    assert.ok(rel < { fp32: 1e-7, fp16: 5e-3, int8: 5e-2 }[dtype], `${dtype} relative error ${rel}`);
    // What `deno task convert` calls: the same error, reported and recorded in the bundle's provenance.
    const p = await packConversion(res, {
      dtype,
      source: { name: "x.pth", format: "pth" },
      extraMeta: { a: 1 },
    });
    const pm = await loadBundle(p.bytes);
    assert.equal(pm.meta.a, 1);
    const prov = pm.meta.provenance as Record<string, unknown>;
    assert.equal(prov.source, "x.pth");
    if (dtype === "fp32") assert.equal(p.precision, null);
    else {
      assert.equal(p.precision!.relErr, rel);
      assert.equal(prov[`${dtype}_rel_err`], rel);
      assert.equal(prov[`${dtype}_max_abs_err`], p.precision!.maxAbsErr);
      assert.ok(p.fp32Bytes > p.bytes.length);
    }
  }
  assert.ok(sizes.fp16 <= 0.51 * sizes.fp32, `fp16 ${sizes.fp16} vs fp32 ${sizes.fp32}`);
  assert.ok(sizes.int8 <= 0.27 * sizes.fp32, `int8 ${sizes.int8} vs fp32 ${sizes.fp32}`);
});

Deno.test("cli: argument errors exit non-zero with a message", async (t) => {
  const train = new URL("train.pth", loadCase("net_block_c8_S1_p2x2_k13_gp4").dir).pathname;
  const cases: [string, string, string[], RegExp][] = [
    ["unknown --arch", "convert", [train, "--arch", "ResNet50", "--out", `${tmp}/x`], /unknown --arch/],
    [
      "bad --kwargs JSON",
      "convert",
      [train, "--arch", "RepMLPBlock", "--kwargs", "{h:", "--out", `${tmp}/x`],
      /JSON/,
    ],
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
  const c = loadCase("net_block_c8_S1_p2x2_k13_gp4");
  const ok = await bundleFromConversion(convertStateDict(c.train, { arch: "RepMLPBlock" }), "fp32");
  await t.step("inspect: tampered bundle fails its hash", async () => {
    const b = `${tmp}/tamper.safetensors`, bytes = ok.slice();
    bytes[bytes.length - 5] ^= 0x40;
    await Deno.writeFile(b, bytes);
    await assert.rejects(loadBundle(bytes), IntegrityError);
    const r = await task("inspect", [b]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /integrity|SHA-256/);
  });
  await t.step("predict: wrong input shape", async () => {
    const b = `${tmp}/ok.safetensors`, x = `${tmp}/bad.npy`;
    await Deno.writeFile(b, ok);
    await Deno.writeFile(x, writeNpy({ dtype: "float32", shape: [1, 3, 8, 8], data: new Float32Array(192) }));
    const r = await task("predict", [b, "--input", x, "--out", `${tmp}/y.npy`]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /invalid_input/);
  });
});

Deno.test("convert: bad checkpoints and kwargs are typed errors that say what is wrong", async () => {
  const c = loadCase("net_block_c8_S1_p2x2_k13_gp4");
  const sd = readStateDict(await Deno.readFile(new URL("train.pth", c.dir)));
  assert.throws(
    () =>
      convertStateDict(sd, {
        arch: "RepMLP",
        kwargs: { in_channels: 8, out_channels: 8, H: 8, W: 8, h: 4, w: 4, reparam_conv_k: [1, 3] },
      }),
    ArchMismatchError,
  );
  assert.throws(
    () => convertStateDict(sd, { arch: "RepMLPBlock", kwargs: { h: 2, w: 8 } }),
    /checkpoint says/,
  );
  assert.throws(
    () => convertStateDict(sd, {}),
    (e) => e instanceof InvalidArgumentError && /--arch/.test(`${e.message} ${e.hint}`),
  );
  await assert.rejects(readFileBytes(`${tmp}/nope.pth`), /not found/);
  const m = await loadBundle(
    await bundleFromConversion(convertStateDict(sd, { arch: "RepMLPBlock" }), "fp32"),
  );
  const s = await createSession(m, { backend: "reference", log: () => {} });
  await assert.rejects(s.run(randn([1, 3, 8, 8], 0)), InvalidInputError);
  await s.dispose();
});

globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(tmp, { recursive: true });
  } catch { /* already gone */ }
});
