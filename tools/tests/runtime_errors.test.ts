// Bad input to the runtime: typed errors (src/errors.ts) or a logged fallback, never a raw ORT error.
import assert from "node:assert/strict";
import { buildModel } from "../../runtime/src/arch/registry.ts";
import {
  ArchMismatchError,
  InvalidArgumentError,
  InvalidInputError,
  RepmlpError,
  UnsupportedError,
} from "../../runtime/src/errors.ts";
import { buildOnnx } from "../../runtime/src/onnx/graph.ts";
import { randn, randomStateDict } from "../../runtime/src/random.ts";
import { type Backend, createSession, type Session } from "../../runtime/src/backends/mod.ts";
import type { F32 } from "../../runtime/src/tensor.ts";

const desc = buildModel("RepMLPBlock", {
  in_channels: 8,
  out_channels: 8,
  h: 4,
  w: 4,
  reparam_conv_k: [3],
  num_sharesets: 2,
});
const train = randomStateDict(desc, "train", 3);
const quiet = { log: () => {} };

for (const backend of ["wasm", "reference"] as const) {
  Deno.test(`runtime errors (${backend}): wrong shape, dtype, NaN → InvalidInputError`, async () => {
    const s = await createSession({ desc, tensors: train }, { backend, ...quiet });
    const bad: [string, unknown][] = [
      ["channels", randn([1, 4, 8, 8], 1)],
      ["rank 3", randn([8, 8, 8], 1)],
      ["not divisible into 4×4 partitions", randn([1, 8, 6, 8], 1)],
      ["float64 data", { dtype: "float64", shape: [1, 8, 8, 8], data: new Float64Array(512) }],
      ["dtype says float32 but data is not", {
        dtype: "float32",
        shape: [1, 8, 8, 8],
        data: new Array(512).fill(0),
      }],
      ["shape/data length mismatch", { dtype: "float32", shape: [2, 8, 8, 8], data: new Float32Array(512) }],
      ["null", null],
    ];
    for (const [what, x] of bad) {
      await assert.rejects(s.run(x as F32), InvalidInputError, what);
    }
    const nan = randn([1, 8, 8, 8], 2);
    nan.data[17] = NaN;
    await assert.rejects(
      s.run(nan),
      (e: unknown) => e instanceof InvalidInputError && /non-finite/.test(e.message),
    );
    const inf = randn([1, 8, 8, 8], 2);
    inf.data[3] = Infinity;
    await assert.rejects(s.run(inf), InvalidInputError);
    // Still usable after bad input.
    assert.deepEqual((await s.run(randn([2, 8, 8, 8], 4))).shape, [2, 8, 8, 8]);
    await s.dispose();
    await assert.rejects(s.run(randn([1, 8, 8, 8], 1)), InvalidArgumentError, "disposed");
  });
}

Deno.test("runtime errors: unknown backend, bad model, wrong weights", async () => {
  await assert.rejects(
    createSession({ desc, tensors: train }, { backend: "cuda" as Backend }),
    (e: unknown) => e instanceof InvalidArgumentError && /unknown backend 'cuda'/.test(e.message) && !!e.hint,
  );
  await assert.rejects(createSession({} as never, { backend: "wasm" }), InvalidArgumentError);
  const other = buildModel("RepMLPBlock", {
    in_channels: 16,
    out_channels: 16,
    h: 4,
    w: 4,
    num_sharesets: 2,
  });
  await assert.rejects(
    createSession({ desc: other, tensors: train }, { backend: "wasm" }),
    ArchMismatchError,
  );
  assert.throws(
    () => buildOnnx(desc, train, {}),
    (e: unknown) => e instanceof InvalidArgumentError && /inputHW/.test(e.message),
  );
  assert.throws(
    () => buildOnnx(desc, train, { inputHW: [8, 8], precision: "int4" as never }),
    InvalidArgumentError,
  );
  const deploy = (await import("../../runtime/src/fold.ts")).foldStateDict(desc, train);
  assert.throws(() => buildOnnx(desc, deploy, { inputHW: [8, 8], structure: "train" }), /TRAIN state_dict/);
});

Deno.test("runtime errors: missing WebGPU → UnsupportedError for webgpu, logged fallback for auto", async () => {
  await assert.rejects(
    createSession({ desc, tensors: train }, { backend: "webgpu", gpu: null, ...quiet }),
    (e: unknown) =>
      e instanceof UnsupportedError && /WebGPU is not available/.test(e.message) && /wasm/.test(e.hint!),
  );
  const noAdapter = { requestAdapter: () => Promise.resolve(null) };
  await assert.rejects(
    createSession({ desc, tensors: train }, { backend: "webgpu", gpu: noAdapter }),
    UnsupportedError,
  );
  const logs: string[] = [];
  const s: Session = await createSession({ desc, tensors: train }, {
    backend: "auto",
    gpu: noAdapter,
    log: (m) => logs.push(m),
  });
  assert.equal(s.backend, "wasm");
  assert.match(s.note!, /returned null/);
  assert.ok(logs.some((m) => /backend auto: using wasm/.test(m)), logs.join("\n"));
  const y = await s.run(randn([1, 8, 8, 8], 5));
  assert.deepEqual(y.shape, [1, 8, 8, 8]);
  await s.dispose();
  // Every error above is a RepmlpError with a stable code.
  try {
    await createSession({ desc, tensors: train }, { backend: "webgpu", gpu: null });
  } catch (e) {
    assert.ok(e instanceof RepmlpError);
    assert.equal(e.code, "unsupported");
  }
});
