// `deno task distill` end to end on a small folder, bounded (tiny student, a few dozen steps):
// teacher = the shipped synthetic face bundle, images = synthetic faces written as PNG files.
// The student must move towards the teacher on held-out images, resume must continue from the
// cached teacher embeddings, and the checkpoint must convert to an int8 bundle like any model.
import assert from "node:assert/strict";
import { encode } from "fast-png";
import { renderIdentities } from "../data/faces.ts";
import { readSafetensors } from "../../runtime/src/io/safetensors.ts";
import { loadBundle } from "../../runtime/src/deploy_model.ts";
import { ROOT, runCliOk as task } from "./cli_testutil.ts";

Deno.test("distill: student approaches the teacher on held-out faces; resume; int8 convert", async () => {
  const dir = await Deno.makeTempDir({ prefix: "repmlp-distill-" });
  const set = renderIdentities(1000, 12, 4, 96, 3);
  const plane = 3 * 96 * 96;
  await Deno.mkdir(`${dir}/img/sub`, { recursive: true });
  for (let n = 0; n < set.n; n++) {
    const rgb = new Uint8Array(plane);
    for (let i = 0; i < 96 * 96; i++) {
      for (let c = 0; c < 3; c++) rgb[i * 3 + c] = set.images[n * plane + c * 96 * 96 + i];
    }
    await Deno.writeFile(
      `${dir}/img/${n % 2 ? "sub/" : ""}${n}.png`,
      encode({ width: 96, height: 96, data: rgb, channels: 3 }),
    );
  }
  const out = `${dir}/student.safetensors`;
  const args = [
    "--teacher",
    `${ROOT}weights/face-synthetic-demo.int8.safetensors`,
    "--images",
    `${dir}/img`,
    "--align",
    "none",
    "--out",
    out,
    "--kwargs",
    '{"stem_channels":[8,16],"channels":[16,16]}',
    "--batch",
    "16",
    "--backend",
    "wasm",
    "--hold-out",
    "0.2",
    "--epochs",
    "20",
    "--quiet",
  ];
  await task("distill", [...args, "--max-steps", "30"]);
  const meta = () => readSafetensors(Deno.readFileSync(out)).metadata;
  const t1 = JSON.parse(meta().repmlp_edge_meta).training;
  assert.equal(t1.faces, 48);
  assert.equal(t1.steps, 30);
  // A random student is unrelated to the teacher (cosine ≈ 0); 30 steps must move it clearly.
  assert.ok(Math.abs(t1.held_out_cosine_before) < 0.2, `before ${t1.held_out_cosine_before}`);
  assert.ok(t1.held_out_cosine > t1.held_out_cosine_before + 0.15, JSON.stringify(t1));

  const text = await task("distill", [...args, "--max-steps", "45", "--resume"]);
  assert.match(text, /from the cache/);
  const t2 = JSON.parse(meta().repmlp_edge_meta).training;
  assert.equal(t2.steps, 45);
  assert.equal(t2.held_out_cosine_before, t1.held_out_cosine_before);

  await task("convert", [out, "--out", `${dir}/s.int8.safetensors`, "--dtype", "int8"]);
  const b = await loadBundle(await Deno.readFile(`${dir}/s.int8.safetensors`));
  assert.equal(b.dtype, "int8");
  assert.equal(b.meta.task, "face-embedding");
  assert.equal(b.desc.kwargs.embedding_dim, 128);
  await Deno.remove(dir, { recursive: true });
});
