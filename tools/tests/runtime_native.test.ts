// backend "native" (onnxruntime-node through N-API in Deno) on every shared case, and the exported
// .onnx file read back by it. Ignored (reason in the test name) only where the addon cannot load.
import assert from "node:assert/strict";
import { buildModel } from "../../runtime/src/arch/registry.ts";
import { createSession } from "../../runtime/src/backends/mod.ts";
import { maxAbsDiff } from "../../runtime/src/tensor.ts";
import { InvalidArgumentError, UnsupportedError } from "../../runtime/src/errors.ts";
import { buildOnnx } from "../../runtime/src/onnx/graph.ts";
import { CASES, loadCase, REFDATA } from "./_refdata.ts";

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

// Probed once at load so the tests show as ignored, with the reason, where the addon cannot load.
const why = await nativeAvailable();
const ignored = why ? ` (ignored: ${why})` : "";

Deno.test(
  { name: `runtime native: onnxruntime-node reproduces every shared case${ignored}`, ignore: !!why },
  async (t) => {
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
  },
);

Deno.test({
  name: `runtime native: export-onnx CLI writes a file onnxruntime-node runs (--check)${ignored}`,
  ignore: !!why,
}, async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = `${dir}/unit.onnx`;
    const ckpt = new URL("net_unit_c16_S4_p2x2_k13_gp4/train.pth", REFDATA).pathname;
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
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("export-onnx: a free-size model without inputHW is refused with the flag to pass", () => {
  const c = loadCase("net_unit_c16_S4_p2x2_k13_gp4");
  const desc = buildModel(c.cls, c.kwargs);
  assert.throws(
    () => buildOnnx(desc, c.deploy, {}),
    (e) => e instanceof InvalidArgumentError && /--input-hw/.test(e.message),
  );
});
