// `deno task eval`'s model opener: a bundle runs on ORT, a training checkpoint on its tfjs training
// graph (eval-mode BN); both must give the same outputs on the same input (float32 both sides:
// 1e-4 · max(1, max|out|)), and what is neither fails with the bundle's typed error.
import assert from "node:assert/strict";
import { buildModel } from "../../runtime/src/arch/registry.ts";
import { convertStateDict, MODEL_METADATA_KEY, recordOf } from "../../runtime/src/convert.ts";
import { bundleFromConversion } from "../../runtime/src/deploy_model.ts";
import { CorruptFileError, InvalidArgumentError } from "../../runtime/src/errors.ts";
import { writeSafetensors } from "../../runtime/src/io/safetensors.ts";
import { randn, randomStateDict } from "../../runtime/src/random.ts";
import { maxAbs, maxAbsDiff } from "../../runtime/src/tensor.ts";
import { openEvalModel, withThreshold } from "../eval/model.ts";
import { TINY_CLASSIFIER } from "./api_testutil.ts";

const KWARGS = TINY_CLASSIFIER;

Deno.test("eval model: bundle (ORT) and training checkpoint (tfjs) agree; neither → typed error", async () => {
  const desc = buildModel("RepMLPNet", KWARGS);
  const train = randomStateDict(desc, "train", 5);
  const meta = { task: "classification", note: "x" };
  const ckpt = writeSafetensors(train, {
    [MODEL_METADATA_KEY]: JSON.stringify(recordOf(desc)),
    repmlp_edge_meta: JSON.stringify(meta),
  });
  const res = convertStateDict(train, { arch: "RepMLPNet", kwargs: KWARGS });
  const bundleBytes = await bundleFromConversion(res, "fp32", meta);
  const x = randn([2, 1, 28, 28], 6);
  const a = await openEvalModel(bundleBytes);
  const b = await openEvalModel(ckpt);
  try {
    assert.ok(a.bundle && !b.bundle);
    assert.match(a.engine, /fp32 bundle/);
    assert.match(b.engine, /^tfjs-.*training graph/);
    assert.deepEqual(a.meta, meta);
    assert.deepEqual(b.meta, meta);
    const ya = await a.predict(x.data, x.shape), yb = await b.predict(x.data, x.shape);
    const d = maxAbsDiff(ya, yb), tol = 1e-4 * Math.max(1, maxAbs(ya));
    assert.ok(d < tol, `bundle vs checkpoint: ${d} (tol ${tol})`);
    const t = await openEvalModel(
      await withThreshold(a.bundle, "ds", {
        threshold: 0.5,
        auc: 0.9,
        tarAtFar: {},
        thresholdAtFar: {},
        bestAccuracy: 0.8,
      }),
    );
    assert.equal(t.meta.threshold, 0.5);
    assert.equal((t.meta.verification as { dataset: string }).dataset, "ds");
    await t.dispose();
  } finally {
    await a.dispose();
    await b.dispose();
  }
  await assert.rejects(() => openEvalModel(new Uint8Array(64)), CorruptFileError);
  const deployCkpt = writeSafetensors(res.deploy, { [MODEL_METADATA_KEY]: JSON.stringify(recordOf(desc)) });
  await assert.rejects(() => openEvalModel(deployCkpt), InvalidArgumentError);
});
