// backend "native" (onnxruntime-node through N-API in Deno) on every shared case, and the exported
// .onnx file read back by it. Skips with a logged reason only where the addon cannot load.
import assert from "node:assert/strict";
import { buildModel } from "../../runtime/src/arch/registry.ts";
import { UnsupportedError } from "../../runtime/src/errors.ts";
import { createSession } from "../../runtime/src/backends/mod.ts";
import { maxAbsDiff } from "../../runtime/src/tensor.ts";
import { CASES, loadCase } from "./_refdata.ts";

async function nativeAvailable(): Promise<string | null> {
  try {
    const { ortNodeEngine } = await import("../../runtime/src/backends/ort_node.ts");
    await ortNodeEngine({});
    return null;
  } catch (e) {
    if (e instanceof UnsupportedError) return e.message;
    throw e;
  }
}

Deno.test("runtime native: onnxruntime-node reproduces every shared case", async (t) => {
  const why = await nativeAvailable();
  if (why) {
    console.warn(`skipped: ${why}`);
    return;
  }
  for (const name of CASES) {
    await t.step(name, async () => {
      const c = loadCase(name);
      const desc = buildModel(c.cls, c.kwargs);
      const inputHW: [number, number] = [c.input.shape[2], c.input.shape[3]];
      for (const [sd, ref] of [[c.train, c.outTrain], [c.deploy, c.outDeploy]] as const) {
        const s = await createSession({ desc, tensors: sd }, { backend: "native", inputHW, log: () => {} });
        assert.equal(s.backend, "native");
        const d = maxAbsDiff((await s.run(c.input)).data, ref);
        await s.dispose();
        assert.ok(d < 1e-4, `max diff ${d}`);
      }
    });
  }
});

Deno.test("runtime native: export-onnx CLI writes a file onnxruntime-node runs (--check)", async () => {
  if (await nativeAvailable()) return;
  const dir = await Deno.makeTempDir();
  try {
    const out = `${dir}/unit.onnx`;
    const ckpt =
      new URL("../../../shared/refdata/net_unit_c16_S4_p2x2_k13_gp4/train.pth", import.meta.url).pathname;
    const cmd = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "tools/cli/export_onnx.ts",
        ckpt,
        "--arch",
        "RepMLPNetUnit",
        "--input-hw",
        "8,8",
        "--out",
        out,
        "--check",
      ],
      cwd: new URL("../..", import.meta.url).pathname,
      stdout: "piped",
      stderr: "piped",
    });
    const r = await cmd.output();
    const text = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
    assert.ok(r.success, text);
    const m = /max abs diff ([0-9.e+-]+)/.exec(text);
    assert.ok(m && Number(m[1]) < 1e-4, text);
    assert.ok((await Deno.stat(out)).size > 1000);
    // Missing --input-hw for a free-size model: a clear error, non-zero exit.
    const bad = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "tools/cli/export_onnx.ts", ckpt, "--arch", "RepMLPNetUnit", "--out", out],
      cwd: new URL("../..", import.meta.url).pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(bad.success, false);
    assert.match(new TextDecoder().decode(bad.stderr), /--input-hw/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
