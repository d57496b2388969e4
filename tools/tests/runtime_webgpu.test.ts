// backend "webgpu" (onnxruntime-web/webgpu, native WebGPU EP) on the small shared cases, tolerance 1e-3.
// In CI Debian's mesa-vulkan-drivers give Deno a software adapter (llvmpipe): this checks correctness,
// not speed. Ignored (reason in the test name) when navigator.gpu.requestAdapter() returns null.
// fp16 compute (adapters with shader-f16, e.g. lavapipe) is held to 5e-3·max(1, max|out|): measured ≤ 3.4e-3.
import assert from "node:assert/strict";
import { buildModel } from "../../runtime/src/arch/registry.ts";
import { createSession, probeWebGpu } from "../../runtime/src/backends/mod.ts";
import { convertStateDict } from "../../runtime/src/convert.ts";
import { bundleFromConversion, loadBundle } from "../../runtime/src/deploy_model.ts";
import { forward } from "../../runtime/src/reference.ts";
import { maxAbs, maxAbsDiff } from "../../runtime/src/tensor.ts";
import { loadCase } from "./_refdata.ts";

const SMALL = ["net_block_c8_S1_p2x2_k13_gp4", "net_unit_c16_S4_p2x2_k13_gp4", "r21_repmlp_c8_p2x2_k13_g1"];

// Probed once at load so a test that cannot run here is reported as ignored, with the reason in its name.
const p = await probeWebGpu();
const noAdapter = p.adapter ? "" : ` (ignored: ${p.reason})`;

Deno.test(
  { name: `runtime webgpu: small shared cases within 1e-3${noAdapter}`, ignore: !p.adapter },
  async (t) => {
    console.log(`adapter: ${p.description} (software: ${p.software}, shader-f16: ${p.f16})`);
    for (const name of SMALL) {
      await t.step(name, async () => {
        const c = loadCase(name);
        const desc = buildModel(c.cls, c.kwargs);
        const inputHW: [number, number] = [c.input.shape[2], c.input.shape[3]];
        for (const [sd, ref] of [[c.train, c.outTrain], [c.deploy, c.outDeploy]] as const) {
          const logs: string[] = [];
          const s = await createSession({ desc, tensors: sd }, {
            backend: "webgpu",
            inputHW,
            log: (m) => logs.push(m),
          });
          assert.equal(s.backend, "webgpu");
          assert.equal(s.provider, "webgpu");
          const d = maxAbsDiff((await s.run(c.input)).data, ref);
          assert.ok(d < 1e-3, `max diff ${d}`);
          // Parallel calls must all settle (unserialised they hang on the WebGPU EP).
          const ys = await Promise.all([0, 1, 2, 3].map(() => s.run(c.input)));
          for (const y of ys) assert.ok(maxAbsDiff(y.data, ref) < 1e-3);
          await s.dispose();
          if (p.software) assert.ok(logs.some((m) => /software/.test(m)), "software adapter is logged");
        }
      });
    }
  },
);

Deno.test({
  name: `runtime webgpu: auto skips a software adapter and says why${
    noAdapter || (p.software ? "" : " (ignored: the adapter is hardware)")
  }`,
  ignore: !p.adapter || !p.software,
}, async () => {
  const c = loadCase("net_block_c8_S1_p2x2_k13_gp4");
  const logs: string[] = [];
  const s = await createSession({ desc: buildModel(c.cls, c.kwargs), tensors: c.deploy }, {
    backend: "auto",
    inputHW: [8, 8],
    log: (m) => logs.push(m),
  });
  assert.equal(s.backend, "wasm");
  assert.match(s.note!, /software/);
  assert.ok(logs.some((m) => /using wasm/.test(m)));
  await s.dispose();
});

Deno.test({
  name: `runtime webgpu: fp16 bundle runs in fp16 when the adapter has shader-f16${
    noAdapter || (p.f16 ? "" : " (ignored: adapter has no shader-f16)")
  }`,
  ignore: !p.adapter || !p.f16,
}, async () => {
  const c = loadCase("net_unit_c16_S4_p2x2_k13_gp4");
  const res = convertStateDict(c.train, { arch: c.cls, kwargs: c.kwargs });
  const m = await loadBundle(await bundleFromConversion(res, "fp16"));
  const s = await createSession(m, { backend: "webgpu", inputHW: [8, 8], log: () => {} });
  assert.equal(s.precision, "fp16");
  const y = await s.run(c.input);
  await s.dispose();
  const ref = forward(m.desc, m.tensors, c.input, "deploy");
  const d = maxAbsDiff(y.data, ref.data), tol = 5e-3 * Math.max(1, maxAbs(ref.data));
  assert.ok(d < tol, `fp16 on WebGPU: ${d} (tol ${tol})`);
});
