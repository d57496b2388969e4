// fp16 and int8 bundles on ORT wasm. Tolerances (measured on every shared case, see docs/runtime.md):
//  - default (weights upcast/dequantised at load, fp32 compute): ORT = reference forward on the same
//    dequantised weights within 1e-4, so its error vs fp32 is exactly the one `convert` reports;
//  - int8 `quant: "dynamic"` (DynamicQuantizeLinear + MatMulInteger): |y − fp32| ≤ reported int8 error
//    + 1% of max|out| (activations are quantised to 8 bits per tensor);
//  - `precision: "int8-qdq"` (DequantizeLinear in the graph): = reference on the bundle's weights within 1e-4;
//  - `precision: "fp16"` graph (fp16 activations too, what WebGPU with shader-f16 runs): within
//    2e-3·max(1, max|out|) of the reference on the same fp16 weights.
import assert from "node:assert/strict";
import { convertStateDict } from "../../runtime/src/convert.ts";
import { bundleFromConversion, loadBundle } from "../../runtime/src/deploy_model.ts";
import { buildOnnx } from "../../runtime/src/onnx/graph.ts";
import { decodeModel } from "../../runtime/src/onnx/proto.ts";
import { forward } from "../../runtime/src/reference.ts";
import { createSession, createSessionFromBundle } from "../../runtime/src/backends/mod.ts";
import { IntegrityError } from "../../runtime/src/errors.ts";
import { maxAbs, maxAbsDiff } from "../../runtime/src/tensor.ts";
import { CASES, loadCase } from "./_refdata.ts";

Deno.test("runtime dtypes: fp16 / int8 bundles on wasm stay within the convert-reported error", async (t) => {
  for (const name of CASES) {
    await t.step(name, async () => {
      const c = loadCase(name);
      const res = convertStateDict(c.train, { arch: c.cls, kwargs: c.kwargs });
      const y32 = forward(res.desc, res.deploy, c.input, "deploy");
      const scale = Math.max(1, maxAbs(y32.data));
      for (const dtype of ["fp16", "int8"] as const) {
        const m = await loadBundle(await bundleFromConversion(res, dtype));
        const yq = forward(m.desc, m.tensors, c.input, "deploy");
        const reported = maxAbsDiff(yq.data, y32.data); // what `convert` reports for this bundle
        const s = await createSession(m, { backend: "wasm", log: () => {} });
        assert.equal(s.precision, "fp32");
        const y = await s.run(c.input);
        await s.dispose();
        assert.ok(maxAbsDiff(y.data, yq.data) < 1e-4, `${dtype}: ORT vs reference on the same weights`);
        assert.ok(
          maxAbsDiff(y.data, y32.data) <= reported + 1e-4,
          `${dtype}: error vs fp32 beyond ${reported}`,
        );
        if (dtype === "int8") {
          const sd = await createSession({ ...m, quant: "dynamic" }, { backend: "wasm", log: () => {} });
          assert.equal(sd.precision, "int8-dynamic");
          const yd = await sd.run(c.input);
          await sd.dispose();
          const e = maxAbsDiff(yd.data, y32.data);
          assert.ok(e <= reported + 0.01 * scale, `int8 dynamic: ${e} > ${reported} + 1%·${scale}`);
          // DequantizeLinear in the graph re-creates exactly the bundle's dequantised weights.
          const sq = await createSession(m, { backend: "wasm", precision: "int8-qdq", log: () => {} });
          const eq = maxAbsDiff((await sq.run(c.input)).data, yq.data);
          await sq.dispose();
          assert.ok(eq < 1e-4, `int8 qdq vs reference on the bundle's weights: ${eq}`);
        }
        const sh = await createSession(m, { backend: "wasm", precision: "fp16", log: () => {} });
        const yh = await sh.run(c.input);
        await sh.dispose();
        const eh = maxAbsDiff(yh.data, yq.data);
        assert.ok(eh <= 2e-3 * scale, `fp16 compute: ${eh}`);
      }
    });
  }
});

Deno.test("runtime dtypes: int8 graphs really hold int8 weights", () => {
  const c = loadCase("net_block_c32_S4_p1x1_h7_k13_gp4");
  const res = convertStateDict(c.train, { arch: c.cls, kwargs: c.kwargs });
  const f32 = buildOnnx(res.desc, res.deploy, { inputHW: [7, 7] });
  for (const precision of ["int8-dynamic", "int8-qdq"] as const) {
    const g = buildOnnx(res.desc, res.deploy, { inputHW: [7, 7], precision });
    const m = decodeModel(g.bytes);
    const int8 = m.graph!.initializer!.filter((i) => i.dataType === 3);
    assert.ok(int8.some((i) => i.name!.includes("fc3")), `${precision}: fc3 weight stored as int8`);
    assert.ok(
      g.weightBytes < f32.weightBytes * 0.4,
      `${precision}: ${g.weightBytes} vs fp32 ${f32.weightBytes}`,
    );
    const ops = new Set(m.graph!.node!.map((n) => n.opType));
    assert.ok(ops.has(precision === "int8-dynamic" ? "MatMulInteger" : "DequantizeLinear"));
  }
});

Deno.test("runtime dtypes: createSessionFromBundle loads, verifies and runs bundle bytes", async () => {
  const c = loadCase("r21_repmlp_c8_p2x2_k13_g1");
  const res = convertStateDict(c.train, { arch: c.cls, kwargs: c.kwargs });
  const bytes = await bundleFromConversion(res, "int8");
  const s = await createSessionFromBundle(bytes, { backend: "wasm", quant: "dynamic", log: () => {} });
  assert.equal(s.precision, "int8-dynamic");
  const y = await s.run(c.input);
  await s.dispose();
  assert.ok(maxAbsDiff(y.data, c.outTrain) < 0.1 * maxAbs(c.outTrain));
  const bad = bytes.slice();
  bad[bad.length - 5] ^= 0xff;
  await assert.rejects(createSessionFromBundle(bad, { backend: "wasm" }), IntegrityError);
});
