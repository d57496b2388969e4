// The Cloudflare Workers path: ORT-web given a pre-compiled WebAssembly.Module (Workers cannot compile
// wasm from bytes at run time). Own test file = own isolate, so ORT-web initialises here, through the hook.
import assert from "node:assert/strict";
import { buildModel } from "../../runtime/src/arch/registry.ts";
import { randn, randomStateDict } from "../../runtime/src/random.ts";
import { forward } from "../../runtime/src/reference.ts";
import { createSession, ortWasmMemoryBytes } from "../../runtime/src/backends/mod.ts";
import { maxAbsDiff } from "../../runtime/src/tensor.ts";
import { ortWasmPath } from "../build/ort.ts";

Deno.test("runtime wasm: ortWasm.module is instantiated instead of ORT's own file", async () => {
  const file = ortWasmPath(); // through the package resolution, not a node_modules path
  const module = await WebAssembly.compile(await Deno.readFile(file));
  const desc = buildModel("RepMLPBlock", {
    in_channels: 8,
    out_channels: 8,
    h: 4,
    w: 4,
    reparam_conv_k: [1, 3],
  });
  const train = randomStateDict(desc, "train", 11);
  // With `module` set ORT is handed a dummy binary: only the hook substituting the module makes this work.
  const s = await createSession({ desc, tensors: train }, {
    backend: "wasm",
    ortWasm: { module },
    log: () => {},
  });
  const x = randn([2, 8, 8, 8], 12);
  assert.ok(maxAbsDiff((await s.run(x)).data, forward(desc, train, x, "train").data) < 1e-4);
  assert.ok(ortWasmMemoryBytes() > 1 << 20, "ORT's wasm memory is visible");
  assert.equal(WebAssembly.instantiate.name, "instantiate", "the hook is removed after initialisation");
  await s.dispose();
});
