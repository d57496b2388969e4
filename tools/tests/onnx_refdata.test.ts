// Every shared reference case (official PyTorch outputs) through the ONNX graph on ORT-web wasm:
// deploy graph from the folded TRAIN checkpoint and from the official DEPLOY checkpoint, the
// training-structure graph, and the official grouped-Conv fc3 variant. Tolerance 1e-4 absolute.
import assert from "node:assert/strict";
import { buildModel } from "../../runtime/src/arch/registry.ts";
import { buildOnnx, type BuildOptions } from "../../runtime/src/onnx/graph.ts";
import { decodeModel } from "../../runtime/src/onnx/proto.ts";
import { createSession } from "../../runtime/src/backends/mod.ts";
import { ortWebEngine } from "../../runtime/src/backends/ort_web.ts";
import { maxAbsDiff, type StateDict } from "../../runtime/src/tensor.ts";
import { CASES, loadCase } from "./_refdata.ts";

const TOL = 1e-4;

Deno.test("onnx refdata: deploy graph on ORT wasm reproduces out_train / out_deploy", async (t) => {
  assert.ok(CASES.length >= 6, "shared cases present");
  for (const name of CASES) {
    await t.step(name, async () => {
      const c = loadCase(name);
      const desc = buildModel(c.cls, c.kwargs);
      const inputHW: [number, number] = [c.input.shape[2], c.input.shape[3]];
      for (
        const [what, sd, ref] of [["train.pth", c.train, c.outTrain], [
          "deploy.pth",
          c.deploy,
          c.outDeploy,
        ]] as const
      ) {
        const s = await createSession({ desc, tensors: sd }, { backend: "wasm", inputHW, log: () => {} });
        assert.equal(s.backend, "wasm");
        assert.equal(s.provider, "wasm");
        const y = await s.run(c.input);
        assert.deepEqual(y.shape, c.input.shape, "every shared case maps NCHW to the same shape");
        const d = maxAbsDiff(y.data, ref);
        assert.ok(d < TOL, `${what}: max |ort − official| = ${d}`);
        // Reused session, second call, batch of one.
        const one = {
          ...c.input,
          shape: [1, ...c.input.shape.slice(1)],
          data: c.input.data.slice(0, c.input.data.length / 2),
        };
        const y1 = await s.run(one);
        assert.ok(
          maxAbsDiff(y1.data, y.data.subarray(0, y1.data.length)) < TOL,
          "batch 1 = first row of batch 2",
        );
        await s.dispose();
      }
    });
  }
});

Deno.test("onnx refdata: training-structure and grouped-Conv fc3 graphs match too", async (t) => {
  const eng = await ortWebEngine("wasm", { threads: 1 });
  const run = async (bytes: Uint8Array, x: { data: Float32Array; shape: number[] }) => {
    const s = await eng.create(bytes);
    try {
      return (await s.run(x.data, x.shape)).data;
    } finally {
      await s.release();
    }
  };
  for (const name of CASES) {
    await t.step(name, async () => {
      const c = loadCase(name);
      const desc = buildModel(c.cls, c.kwargs);
      const inputHW: [number, number] = [c.input.shape[2], c.input.shape[3]];
      const variants: [string, StateDict, BuildOptions, Float32Array][] = [
        ["train structure, MatMul fc3", c.train, { structure: "train" }, c.outTrain],
        ["train structure, official conv fc3", c.train, { structure: "train", fc3: "conv" }, c.outTrain],
        ["deploy, conv fc3", c.deploy, { fc3: "conv" }, c.outDeploy],
        ["deploy, no build-time BN folding", c.deploy, { fuse: false }, c.outDeploy],
      ];
      for (const [what, sd, o, ref] of variants) {
        const g = buildOnnx(desc, sd, { ...o, inputHW });
        const d = maxAbsDiff(await run(g.bytes, c.input), ref);
        assert.ok(d < TOL, `${what}: ${d}`);
      }
    });
  }
});

Deno.test("onnx graph: dynamic batch axis, opset 17, named input/output, deploy has no BN", () => {
  const c = loadCase("net_unit_c16_S4_p2x2_k13_gp4");
  const desc = buildModel(c.cls, c.kwargs);
  const g = buildOnnx(desc, c.train, { inputHW: [8, 8] });
  const m = decodeModel(g.bytes);
  const graph = m.graph!;
  assert.equal(Number(m.opsetImport[0].version), 17);
  const inp = graph.input![0], out = graph.output![0];
  assert.equal(inp.name, "input");
  assert.equal(out.name, "output");
  assert.equal(inp.type!.tensorType!.shape!.dim![0].dimParam, "batch");
  assert.deepEqual(inp.type!.tensorType!.shape!.dim!.slice(1).map((d) => Number(d.dimValue)), [16, 8, 8]);
  const ops = new Set(graph.node!.map((n) => n.opType));
  assert.ok(!ops.has("BatchNormalization"), "deploy graph has no BatchNormalization");
  assert.ok(ops.has("Erf"), "exact (erf) GELU");
  const tg = decodeModel(buildOnnx(desc, c.train, { inputHW: [8, 8], structure: "train" }).bytes);
  const bn = tg.graph!.node!.filter((n) => n.opType === "BatchNormalization").length;
  assert.equal(bn, 1 + 2 + 2 + 2, "train structure keeps fc3_bn, 2 branch BNs, 2 prebn, 2 FFN BNs");
  const meta = Object.fromEntries(m.metadataProps!.map((p) => [p.key, p.value]));
  assert.equal(meta.arch, "RepMLPNetUnit");
});
