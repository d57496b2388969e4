/**
 * Data side of training: IDX parsing (fuzzed), Fashion-MNIST loading, the folder loader (PNG/JPEG,
 * corrupt files, bad layouts), the synthetic face generator, batch augmentation, verification
 * metrics and uint8 preprocessing.
 */
import assert from "node:assert/strict";
import { gzipSync } from "fflate";
import { encode as encodePng } from "fast-png";
import jpeg from "jpeg-js";
import { CorruptFileError, InvalidArgumentError, InvalidInputError } from "../../runtime/src/errors.ts";
import { FASHION_MNIST_DIR, loadFashionMnist, parseIdx } from "../data/fashion_mnist.ts";
import { loadFolderDataset, loadImage, probeFile } from "../data/folder.ts";
import { identity, renderIdentities, syntheticFaceDataset } from "../data/faces.ts";
import { makeBatch } from "../data/augment.ts";
import { rng } from "../../runtime/src/random.ts";
import { preprocess } from "../../runtime/src/image/normalize.ts";
import { loadDataset } from "../train/datasets.ts";
import { top1, verification } from "../train/evaluate.ts";

function idx(dims: number[], payload: Uint8Array): Uint8Array {
  const h = new Uint8Array(4 + 4 * dims.length);
  h[2] = 8;
  h[3] = dims.length;
  dims.forEach((d, i) => new DataView(h.buffer).setUint32(4 + 4 * i, d));
  const out = new Uint8Array(h.length + payload.length);
  out.set(h);
  out.set(payload, h.length);
  return out;
}

Deno.test("IDX parser: valid, gzip'd, and fuzzed corrupt inputs", () => {
  const p = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i);
  const ok = idx([2, 3, 4], p);
  assert.deepEqual(parseIdx(ok).dims, [2, 3, 4]);
  assert.deepEqual(parseIdx(gzipSync(ok)).data, p);
  assert.throws(() => parseIdx(ok.subarray(0, ok.length - 1)), CorruptFileError); // truncated
  assert.throws(() => parseIdx(Uint8Array.of(1, 2, 3, 4, 5)), CorruptFileError); // bad magic
  assert.throws(() => parseIdx(Uint8Array.of(0x1f, 0x8b, 0, 0, 0)), CorruptFileError); // broken gzip
  const r = rng(1);
  for (let i = 0; i < 300; i++) {
    const b = ok.slice(0, Math.floor(r() * (ok.length + 4)));
    for (let k = 0; k < 3 && b.length; k++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
    try {
      parseIdx(b);
    } catch (e) {
      assert.ok(e instanceof CorruptFileError, `fuzz ${i}: ${e}`);
    }
  }
});

Deno.test("Fashion-MNIST from Debian's dataset-fashion-mnist", async () => {
  const test = await loadFashionMnist("test");
  assert.equal(test.n, 10000);
  assert.deepEqual([test.c, test.h, test.w], [1, 28, 28]);
  const counts = new Array(10).fill(0);
  for (const l of test.labels) counts[l]++;
  assert.deepEqual(counts, new Array(10).fill(1000));
  await assert.rejects(() => loadFashionMnist("test", "/nonexistent"), (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError);
    assert.match(String(e.hint), /apt-get install -y dataset-fashion-mnist/);
    return true;
  });
  assert.equal(FASHION_MNIST_DIR, "/usr/share/datasets/fashion-mnist");
});

Deno.test("folder dataset: PNG + JPEG, automatic splits, bad inputs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "repmlp-folder-" });
  try {
    const faces = renderIdentities(0, 4, 10, 32, 0);
    const plane = 32 * 32;
    for (let n = 0; n < faces.n; n++) {
      const id = faces.classes[faces.labels[n]];
      await Deno.mkdir(`${dir}/${id}`, { recursive: true });
      const rgba = new Uint8Array(plane * 4), rgb = new Uint8Array(plane * 3);
      for (let p = 0; p < plane; p++) {
        for (let c = 0; c < 3; c++) {
          rgb[p * 3 + c] = rgba[p * 4 + c] = faces.images[n * 3 * plane + c * plane + p];
        }
        rgba[p * 4 + 3] = 255;
      }
      if (n % 2) {
        await Deno.writeFile(
          `${dir}/${id}/${n}.jpg`,
          jpeg.encode({ data: rgba, width: 32, height: 32 }, 95).data,
        );
      } else {await Deno.writeFile(
          `${dir}/${id}/${n}.png`,
          encodePng({ width: 32, height: 32, data: rgb, channels: 3 }),
        );}
    }
    const cls = await loadFolderDataset(dir, "classify");
    assert.equal(cls.train.n + cls.test!.n, 40);
    assert.equal(cls.test!.n, 4); // every 10th image per class
    assert.deepEqual([cls.train.c, cls.train.h, cls.train.w], [3, 32, 32]);
    // PNG is lossless: the first image decodes to the rendered pixels.
    assert.deepEqual(cls.train.images.subarray(0, 3 * plane), faces.images.subarray(0, 3 * plane));
    const emb = await loadFolderDataset(dir, "embed");
    assert.equal(emb.train.classes.length + emb.test!.classes.length, 4);
    assert.ok(
      !emb.train.classes.some((c) => emb.test!.classes.includes(c)),
      "held-out identities are disjoint",
    );
    // Corrupt image → typed error naming the file.
    await Deno.writeFile(
      `${dir}/${faces.classes[0]}/zz.png`,
      Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 4, 5),
    );
    await assert.rejects(() => loadFolderDataset(dir), (e: unknown) => {
      assert.ok(e instanceof CorruptFileError);
      assert.match(e.message, /zz\.png/);
      return true;
    });
    assert.throws(() => probeFile(new TextEncoder().encode("hello"), "x.txt"), CorruptFileError);
    // Fuzz: truncated / bit-flipped PNG and JPEG either decode or raise CorruptFileError.
    const r = rng(9);
    for (const file of [`${dir}/${faces.classes[0]}/0.png`, `${dir}/${faces.classes[0]}/1.jpg`]) {
      const good = await Deno.readFile(file);
      for (let i = 0; i < 60; i++) {
        const b = good.slice(0, Math.max(4, Math.floor(r() * good.length)));
        for (let k = 0; k < 4; k++) b[4 + Math.floor(r() * (b.length - 4))] ^= 1 << Math.floor(r() * 8);
        try {
          await loadImage(b, "fuzz", [3, 16, 16]);
        } catch (e) {
          assert.ok(e instanceof CorruptFileError, `fuzz ${file} ${i}: ${e}`);
        }
      }
    }
    await assert.rejects(() => loadFolderDataset(`${dir}/missing`), InvalidArgumentError);
    await assert.rejects(() => loadDataset("imagenet"), InvalidArgumentError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("synthetic faces: deterministic, identity-consistent, disjoint held-out identities", () => {
  const a = renderIdentities(3, 2, 3, 48, 0), b = renderIdentities(3, 2, 3, 48, 0);
  assert.deepEqual(a.images, b.images);
  assert.notDeepEqual(identity(1), identity(2));
  const ds = syntheticFaceDataset({
    trainIdentities: 5,
    testIdentities: 3,
    perTrain: 2,
    perTest: 2,
    size: 32,
  });
  assert.equal(ds.train.n, 10);
  assert.equal(ds.test.n, 6);
  assert.ok(!ds.train.classes.some((c) => ds.test.classes.includes(c)));
  // Samples of one identity differ (pose/light/noise).
  const P = 3 * 32 * 32;
  const dist = (i: number, j: number) => {
    let s = 0;
    for (let k = 0; k < P; k++) s += Math.abs(ds.train.images[i * P + k] - ds.train.images[j * P + k]);
    return s / P;
  };
  assert.ok(dist(0, 1) > 0);
});

Deno.test("batches: crop/flip augmentation keeps labels, normalisation matches preprocess()", () => {
  const set = renderIdentities(0, 2, 2, 16, 0);
  const o = { pad: 2, flip: true, mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] };
  const plain = makeBatch(set, [0, 1, 2, 3], { ...o, pad: 0, flip: false }, null);
  const pre = preprocess({ layout: "NCHW", input: [3, 16, 16], mean: o.mean, std: o.std }, set.images, [
    4,
    3,
    16,
    16,
  ]);
  for (let i = 0; i < pre.data.length; i++) assert.ok(Math.abs(pre.data[i] - plain.x[i]) < 1e-5);
  const aug = makeBatch(set, [0, 1, 2, 3], o, rng(3));
  assert.deepEqual(aug.y, plain.y);
  assert.throws(
    () =>
      preprocess({ layout: "NCHW", input: [3, 16, 16], mean: o.mean, std: o.std }, set.images, [
        4,
        1,
        16,
        16,
      ]),
    InvalidInputError,
  );
  assert.throws(() => preprocess({ input: [3] }, set.images, [4, 3, 16, 16]), InvalidArgumentError);
});

Deno.test("metrics: top-1 and verification (ROC, TAR@FAR, threshold)", () => {
  assert.equal(top1(Float32Array.of(1, 2, 5, 0), 2, Int32Array.of(1, 0)), 1);
  // Two identities with perfectly separated embeddings.
  const e = Float32Array.of(1, 0, 0.99, 0.141, 0, 1, 0.141, 0.99);
  const v = verification(e, 2, Int32Array.of(0, 0, 1, 1));
  assert.equal(v.pairs.positive, 2);
  assert.equal(v.pairs.negative, 4);
  assert.equal(v.bestAccuracy, 1);
  assert.equal(v.auc, 1);
  assert.equal(v.tarAtFar["0.001"], 1);
  assert.ok(v.threshold < 0.99 && v.threshold > 0.28, `threshold ${v.threshold}`);
});
