// Every shared reference case (official PyTorch code): our reader + fold + reference forward must
// reproduce the official outputs and folded tensors.
import assert from "node:assert/strict";
import { convertStateDict } from "../../runtime/src/convert.ts";
import { forward } from "../../runtime/src/reference.ts";
import { maxAbsDiff, toF32 } from "../../runtime/src/tensor.ts";
import { CASES, loadCase } from "./_refdata.ts";

Deno.test("refdata: fold + reference forward reproduce the official outputs", async (t) => {
  assert.ok(CASES.length >= 6, "shared cases present");
  for (const name of CASES) {
    await t.step(name, () => {
      const c = loadCase(name);
      const fromTrain = convertStateDict(c.train, { arch: c.cls, kwargs: c.kwargs });
      assert.equal(fromTrain.mode, "train");
      assert.ok(fromTrain.check!.maxAbsDiff < 1e-5 * Math.max(1, fromTrain.check!.maxAbsOut));
      // Folded tensors equal the official deploy.npz.
      assert.deepEqual([...fromTrain.deploy.keys()].sort(), [...c.deployNpz.keys()].sort());
      for (const [k, ref] of c.deployNpz) {
        const ours = fromTrain.deploy.get(k)!;
        if (ref.dtype !== "float32") continue;
        const d = maxAbsDiff(toF32(ours).data, ref.data as Float32Array);
        assert.ok(d < 1e-5, `${k}: max diff ${d}`);
      }
      const y1 = forward(fromTrain.desc, fromTrain.deploy, c.input, "deploy");
      const e1 = maxAbsDiff(y1.data, c.outTrain);
      assert.ok(e1 < 1e-5, `train.pth folded vs out_train: ${e1}`);
      const fromDeploy = convertStateDict(c.deploy, { arch: c.cls, kwargs: c.kwargs });
      assert.equal(fromDeploy.mode, "deploy");
      const y2 = forward(fromDeploy.desc, fromDeploy.deploy, c.input, "deploy");
      const e2 = maxAbsDiff(y2.data, c.outDeploy);
      assert.ok(e2 < 1e-5, `deploy.pth vs out_deploy: ${e2}`);
      // Kwargs inference: the class name alone resolves the blocks whose shapes determine everything.
      if (c.cls === "RepMLPBlock" || c.cls === "RepMLPNetUnit") {
        const auto = convertStateDict(c.train, { arch: c.cls });
        assert.equal(auto.desc.root.kind === "seq" || auto.desc.root.kind === "repmlpnet_block", true);
        assert.ok(maxAbsDiff(forward(auto.desc, auto.deploy, c.input, "deploy").data, c.outTrain) < 1e-5);
      }
    });
  }
});

Deno.test("refdata: contradicting kwargs are refused with the checkpoint's values", () => {
  const c = loadCase("net_block_c32_S4_p1x1_h7_k13_gp4");
  assert.throws(
    () => convertStateDict(c.train, { arch: c.cls, kwargs: { ...c.kwargs, num_sharesets: 8 } }),
    /num_sharesets: given 8, checkpoint says 4/,
  );
  assert.throws(() => convertStateDict(c.train, { arch: "RepMLP", kwargs: {} }), /RepMLP/);
});
