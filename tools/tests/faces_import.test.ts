/**
 * The imported face recogniser (face-api's FaceRecognitionNet, dlib weights): the IR's new layer kinds
 * through fold and the ONNX graph, the tfjs weights-manifest reader (bit-exact with tfjs, fuzzed), and
 * `deno task convert` + `deno task predict` against face-api's own `computeFaceDescriptor` on real faces
 * (tfjs wasm backend). Tolerances: random-weight graph 1e-4·max(1, max|out|); face-api equality 1e-4
 * max abs (the bound).
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { buildModel } from "../../runtime/src/arch/registry.ts";
import { dlibChipTemplate, FACE_API_ARCH } from "../../runtime/src/arch/faceapi.ts";
import { importTfjsWeights } from "../../runtime/src/convert.ts";
import { loadBundle } from "../../runtime/src/deploy_model.ts";
import {
  ArchMismatchError,
  CorruptFileError,
  InvalidArgumentError,
  RepmlpError,
} from "../../runtime/src/errors.ts";
import { foldStateDict } from "../../runtime/src/fold.ts";
import { readTfjsWeightsFile } from "../../runtime/src/io/files.ts";
import { readNpy, writeNpy } from "../../runtime/src/io/npy.ts";
import { decodeTfjsWeights, parseTfjsManifest, type TfjsManifestGroup } from "../../runtime/src/io/tfjs.ts";
import { createSession } from "../../runtime/src/backends/mod.ts";
import { randn, randomStateDict, rng } from "../../runtime/src/random.ts";
import { forward } from "../../runtime/src/reference.ts";
import { alignFace, imageToTensor, templateFor, toPlanar } from "../../runtime/src/image/mod.ts";
import { servedModelFromBundle } from "../../runtime/src/server/bundles.ts";
import { prepare } from "../../runtime/src/server/input.ts";
import { identityImage, toJpeg } from "./api_testutil.ts";
import { runCli } from "./cli_testutil.ts";
import { maxAbs, maxAbsDiff, numel } from "../../runtime/src/tensor.ts";
import {
  faceApiCrops,
  faceApiDescriptors,
  faceApiRecognitionManifest,
  faceApiSamplePhotos,
  loadFaceApi,
} from "../data/faceapi_ref.ts";

const MANIFEST = faceApiRecognitionManifest();
const tmp = await Deno.makeTempDir({ prefix: "repmlp-faces-" });

const cli = (script: string, ...args: string[]) => runCli(script, args);

Deno.test("FaceRecognitionNet: fold and ONNX graph (ORT wasm) equal the training-layout reference", async () => {
  for (const size of [112, 150]) {
    const desc = buildModel(FACE_API_ARCH, { image_size: size });
    const sd = randomStateDict(desc, "train", size);
    // Scales near 1 keep activations at a testable magnitude through 29 conv layers.
    const r = rng(size);
    for (const [k, t] of sd) {
      if (k.endsWith(".scale.weight")) {
        t.data = new Float32Array(t.data.length).map(() => 0.5 + r());
      }
    }
    const x = randn([2, 3, size, size], 7);
    const ref = forward(desc, sd, x, "train");
    assert.deepEqual(ref.shape, [2, 128]);
    const tol = 1e-4 * Math.max(1, maxAbs(ref.data));
    assert.ok(maxAbs(ref.data) > 1e-3, `output too small to test: ${maxAbs(ref.data)}`);
    const deployed = forward(desc, foldStateDict(desc, sd), x, "deploy");
    assert.ok(
      maxAbsDiff(ref.data, deployed.data) < tol,
      `fold ${size}: ${maxAbsDiff(ref.data, deployed.data)}`,
    );
    const s = await createSession({ desc, tensors: sd, dtype: "fp32" }, { backend: "wasm", threads: 1 });
    try {
      const y = await s.run(x);
      assert.ok(maxAbsDiff(ref.data, y.data) < tol, `onnx ${size}: ${maxAbsDiff(ref.data, y.data)}`);
    } finally {
      await s.dispose();
    }
  }
});

Deno.test("FaceRecognitionNet rejects sizes face-api's residualDown cannot add", () => {
  for (const size of [16, 64, 96]) {
    assert.throws(() => buildModel(FACE_API_ARCH, { image_size: size }), InvalidArgumentError);
  }
});

/** A small manifest with every stored type tfjs knows, and its shard. */
function mixedManifest(): { groups: TfjsManifestGroup[]; bin: Uint8Array } {
  const r = rng(3);
  const groups: TfjsManifestGroup[] = [{
    paths: ["a.bin"],
    weights: [
      {
        name: "u8",
        shape: [3, 5],
        dtype: "float32",
        quantization: { dtype: "uint8", scale: 0.0123, min: -1.1 },
      },
      {
        name: "u16",
        shape: [7],
        dtype: "float32",
        quantization: { dtype: "uint16", scale: 3.3e-5, min: -0.7 },
      },
      { name: "f16", shape: [2, 2], dtype: "float32", quantization: { dtype: "float16" } },
      { name: "f32", shape: [4], dtype: "float32" },
      { name: "i32", shape: [3], dtype: "int32" },
      { name: "i32q", shape: [5], dtype: "int32", quantization: { dtype: "uint8", scale: 0.7, min: -3 } },
    ],
  }];
  const bin = new Uint8Array(15 + 14 + 8 + 16 + 12 + 5).map(() => Math.floor(r() * 256));
  const dv = new DataView(bin.buffer);
  dv.setUint16(37, 0x3c00, true); // 1.0 in half precision among random halves
  for (let i = 0; i < 4; i++) dv.setFloat32(37 + 8 + 4 * i, r() * 10 - 5, true);
  return { groups, bin };
}

Deno.test("tfjs manifest decode is bit-exact with tfjs io.decodeWeights", async () => {
  await loadFaceApi(); // tfjs needs an initialised backend to build its tensors
  const cases = [mixedManifest()];
  const real = parseTfjsManifest(await Deno.readFile(MANIFEST));
  const dir = MANIFEST.slice(0, MANIFEST.lastIndexOf("/") + 1);
  cases.push({ groups: real, bin: await Deno.readFile(dir + real[0].paths[0]) });
  for (const { groups, bin } of cases) {
    const ours = await decodeTfjsWeights(groups, () => bin);
    const theirs = tf.io.decodeWeights(bin.slice().buffer, groups[0].weights as tf.io.WeightsManifestEntry[]);
    assert.equal(ours.size, Object.keys(theirs).length);
    for (const [name, t] of ours) {
      const ref = theirs[name].dataSync();
      assert.deepEqual(t.shape, theirs[name].shape, name);
      assert.deepEqual(Array.from(t.data as Float32Array), Array.from(ref), name);
    }
    for (const t of Object.values(theirs)) t.dispose();
  }
});

Deno.test("tfjs manifest: typed errors for broken manifests and shards", async () => {
  const { groups, bin } = mixedManifest();
  const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  await assert.rejects(decodeTfjsWeights(groups, () => bin.subarray(0, bin.length - 1)), CorruptFileError);
  await assert.rejects(decodeTfjsWeights(groups, () => Uint8Array.of(...bin, 0)), CorruptFileError);
  assert.throws(() => parseTfjsManifest("{"), CorruptFileError);
  assert.throws(() => parseTfjsManifest("[]"), CorruptFileError);
  const q = structuredClone(groups);
  (q[0].weights[0].quantization as { dtype: string }).dtype = "int4";
  assert.throws(() => parseTfjsManifest(enc(q)), (e) => e instanceof RepmlpError && e.code === "unsupported");
  const noScale = structuredClone(groups);
  delete noScale[0].weights[1].quantization!.scale;
  assert.throws(() => parseTfjsManifest(enc(noScale)), CorruptFileError);
  const dup = structuredClone(groups);
  dup[0].weights[1].name = "u8";
  assert.throws(() => parseTfjsManifest(enc(dup)), CorruptFileError);
  // Shard paths cannot leave the manifest's folder.
  const esc = `${tmp}/esc.json`;
  await Deno.writeTextFile(esc, JSON.stringify([{ ...groups[0], paths: ["../etc/passwd"] }]));
  await assert.rejects(readTfjsWeightsFile(esc), CorruptFileError);
  // Weights of another network are not mistaken for the recogniser.
  const other = await decodeTfjsWeights(groups, () => bin);
  assert.throws(() => importTfjsWeights(other), InvalidArgumentError);
  assert.throws(() => importTfjsWeights(other, FACE_API_ARCH), ArchMismatchError);
  assert.throws(() => importTfjsWeights(other, "RepMLPNet"), InvalidArgumentError);
});

Deno.test("tfjs manifest fuzz: mutated manifests and shards decode consistently or fail typed", async () => {
  const { groups, bin } = mixedManifest();
  const text = JSON.stringify(groups);
  const r = rng(11);
  const int = (n: number) => Math.floor(r() * n);
  const VALUES = [0, -1, 1e9, 2.5, null, "x", [], {}, "uint8", "float16", "float64", true];
  let ok = 0, typed = 0;
  for (let i = 0; i < 600; i++) {
    let m: Uint8Array | string = text, b = bin;
    const kind = i % 3;
    if (kind === 0) { // byte edits of the JSON text
      const t = new TextEncoder().encode(text);
      for (let k = 1 + int(4); k > 0; k--) t[int(t.length)] = int(128);
      m = t;
    } else if (kind === 1) { // structural edits: one field of one weight gets an odd value
      const g = structuredClone(groups) as unknown as Record<string, unknown>[];
      const w = (g[0].weights as Record<string, unknown>[])[int(6)];
      const field = ["name", "shape", "dtype", "quantization"][int(4)];
      w[field] = field === "shape"
        ? [int(9), VALUES[int(VALUES.length)]].slice(0, 1 + int(2))
        : VALUES[int(VALUES.length)];
      m = JSON.stringify(g);
    } else { // shard truncated, extended or flipped
      b = int(2) ? bin.slice(0, int(bin.length)) : Uint8Array.from([...bin, ...bin.slice(0, 1 + int(8))]);
      if (int(2)) b[int(b.length)] ^= 0xff;
    }
    try {
      const out = await decodeTfjsWeights(parseTfjsManifest(m), () => b);
      for (const t of out.values()) assert.equal(t.data.length, numel(t.shape));
      ok++;
    } catch (e) {
      assert.ok(e instanceof RepmlpError, `case ${i}: untyped ${e}`);
      typed++;
    }
  }
  assert.ok(ok > 10 && typed > 200, `ok ${ok}, typed ${typed}`);
});

Deno.test({
  name: "convert + predict on face-api's manifest equal face-api computeFaceDescriptor (real faces, 1e-4)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const out = `${tmp}/face-resnet.safetensors`;
    const conv = await cli("convert", MANIFEST, "--out", out);
    assert.equal(conv.code, 0, conv.stderr);
    assert.match(conv.stdout, /tfjs weights → FaceRecognitionNet/);
    const bundle = await loadBundle(await Deno.readFile(out));
    assert.deepEqual((bundle.meta.preprocess as { input: number[] }).input, [3, 150, 150]);
    // Faces face-api's own detector finds in two of its demo photos (3 + 4 people).
    const photos = faceApiSamplePhotos();
    const a = await faceApiCrops(await Deno.readFile(photos[0]));
    const b = await faceApiCrops(await Deno.readFile(photos[3]));
    const n = a.n + b.n;
    assert.ok(n >= 6, `only ${n} faces detected`);
    const pixels = Uint8Array.from([...a.pixels, ...b.pixels]);
    await Deno.writeFile(
      `${tmp}/faces.npy`,
      writeNpy({ dtype: "uint8", shape: [n, 3, 150, 150], data: pixels }),
    );
    const pred = await cli(
      "predict",
      out,
      "--input",
      `${tmp}/faces.npy`,
      "--out",
      `${tmp}/emb.npy`,
      "--backend",
      "wasm",
    );
    assert.equal(pred.code, 0, pred.stderr);
    const y = readNpy(await Deno.readFile(`${tmp}/emb.npy`)).data as Float32Array;
    const ref = await faceApiDescriptors(pixels, n);
    let worst = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < 128; j++) worst = Math.max(worst, Math.abs(y[i * 128 + j] - ref[i][j]));
    }
    assert.ok(worst < 1e-4, `max abs vs face-api ${worst}`);
    // Different people get clearly different embeddings (the model is not degenerate on these crops).
    assert.ok(maxAbsDiff(ref[0], ref[1]) > 0.05);
  },
});

Deno.test("served face bundle: 150×150 input, dlib chip template from the bundle meta", async () => {
  const imp = importTfjsWeights(await readTfjsWeightsFile(MANIFEST));
  const meta = JSON.parse(imp.metadata.repmlp_edge_meta);
  assert.deepEqual(meta.align.template, dlibChipTemplate());
  // dlib's chip (150 px, padding 0.25): eye centres at y ≈ 46.6 px, mouth corners at y ≈ 103 px.
  const px = templateFor(150, 150, dlibChipTemplate());
  assert.ok(Math.abs(px[0][0] - 47.549) < 1e-3 && Math.abs(px[0][1] - 46.599) < 1e-3);
  assert.ok(Math.abs(px[4][0] - 97.610) < 1e-3 && Math.abs(px[4][1] - 103.023) < 1e-3);
  // Landmarks exactly at the template give the identity warp.
  const img = { width: 150, height: 150, data: new Uint8Array(3 * 150 * 150).map((_, i) => (i * 7) % 251) };
  const crop = alignFace(img, px, 150, 150, 3, dlibChipTemplate());
  const plain = toPlanar(img, 3);
  assert.ok(
    maxAbsDiff(crop.data.subarray(150 * 40, 150 * 110), plain.data.subarray(150 * 40, 150 * 110)) < 1e-3,
  );
  const { writeBundle } = await import("../../runtime/src/io/bundle.ts");
  const desc = imp.desc;
  const deploy = foldStateDict(desc, imp.stateDict);
  const mk = (m: Record<string, unknown>) =>
    writeBundle({
      model: { arch: desc.arch, kwargs: desc.kwargs, input: desc.input },
      tensors: deploy,
      dtype: "fp32",
      meta: m,
    });
  const served = await servedModelFromBundle(await mk(meta), { name: "t", task: "face", threshold: 0.5 }, {
    backend: "reference",
  });
  assert.deepEqual(served.model.inputSize, [3, 150, 150]);
  assert.deepEqual(served.model.faceTemplate, dlibChipTemplate());
  await served.session.dispose();
  await assert.rejects(
    servedModelFromBundle(await mk({ ...meta, align: { template: [[0, 0]] } }), {
      name: "t",
      task: "face",
      threshold: 0.5,
    }, {
      backend: "reference",
    }),
    InvalidArgumentError,
  );
});

Deno.test("API input: landmarks are aligned to the served model's own template", async () => {
  const jpeg = toJpeg(identityImage(3, 0, 200), 200, 200);
  const lm: [number, number][] = [[70, 80], [130, 80], [100, 115], [75, 150], [125, 150]];
  const base = {
    name: "m",
    dtype: "fp32",
    backend: "reference",
    inputSize: [3, 150, 150] as [number, number, number],
  };
  const dlib = await prepare(jpeg, { ...base, faceTemplate: dlibChipTemplate() }, 1e6, lm);
  const arc = await prepare(jpeg, base, 1e6, lm);
  const input = [3, 150, 150];
  assert.deepEqual(dlib, await imageToTensor(jpeg, { input, landmarks: lm, template: dlibChipTemplate() }));
  assert.deepEqual(arc, await imageToTensor(jpeg, { input, landmarks: lm }));
  assert.ok(maxAbsDiff(dlib, arc) > 0.1, "the two templates give different crops");
});
