// The LFW-protocol evaluator: hand-computed metrics on a tiny score set, the pair-list parsers
// (with fuzzed input), the whole `deno task eval --pairs` path on a tiny LFW-layout folder with
// known answers, and the real-face check set's pairing rules.
import assert from "node:assert/strict";
import { CorruptFileError, InvalidArgumentError } from "../../runtime/src/errors.ts";
import { rng } from "../../runtime/src/random.ts";
import { kFoldProtocol, parseCsvPairs, parseLfwPairs, parsePairs, rocMetrics } from "../eval/mod.ts";
import { encodeJpeg, type RealFace, realFacePairs } from "../data/realfaces.ts";
import { renderIdentities } from "../data/faces.ts";
import { ROOT, runCli, runCliOk } from "./cli_testutil.ts";

Deno.test("protocol: 2-fold LFW accuracy, AUC and TAR@FAR match hand computation", () => {
  // fold 0: genuine 0.9 0.6, impostor 0.5 0.2 | fold 1: genuine 0.8 0.3, impostor 0.7 0.1
  const scores = [0.9, 0.6, 0.5, 0.2, 0.8, 0.3, 0.7, 0.1];
  const same = [true, true, false, false, true, true, false, false];
  const fold = [0, 0, 0, 0, 1, 1, 1, 1];
  const r = kFoldProtocol(scores, same, fold);
  // Fold 0 is judged with fold 1's best threshold: (0.8 + 0.7) / 2 = 0.75 → 0.9 ✓ 0.6 ✗ 0.5 ✓ 0.2 ✓.
  // Fold 1 with fold 0's: (0.6 + 0.5) / 2 = 0.55 → 0.8 ✓ 0.3 ✗ 0.7 ✗ 0.1 ✓.
  assert.deepEqual(r.foldThreshold.map((t) => +t.toFixed(6)), [0.75, 0.55]);
  assert.deepEqual(r.foldAccuracy, [0.75, 0.5]);
  assert.equal(r.meanAccuracy, 0.625);
  assert.equal(r.stdAccuracy, 0.125);
  // AUC = P(genuine > impostor) = (4 + 4 + 3 + 2) / 16.
  assert.equal(r.auc, 13 / 16);
  // 4 impostors: FAR ≤ 1e-2 means FAR 0, i.e. above 0.7 → 2 of 4 genuine.
  assert.equal(r.tarAtFar["0.01"], 0.5);
  assert.equal(r.tarAtFar["0.001"], 0.5);
  assert.equal(r.farResolution, 0.25);
  assert.equal(r.folds, 2);
});

Deno.test("protocol: ties count one half in the AUC; one fold fits on itself; bad input is typed", () => {
  assert.equal(rocMetrics([0.5], [0.5]).auc, 0.5);
  assert.equal(rocMetrics([1, 0.5], [0.5, 0]).auc, (2 + 1 + 0.5) / 4);
  const one = kFoldProtocol([0.9, 0.1], [true, false], [0, 0]);
  assert.equal(one.folds, 1);
  assert.equal(one.meanAccuracy, 1);
  assert.throws(() => kFoldProtocol([], [], []), InvalidArgumentError);
  assert.throws(() => kFoldProtocol([NaN], [true], [0]), InvalidArgumentError);
  assert.throws(() => kFoldProtocol([1, 0], [true, false], [0, 2]), /fold 2 of 3 has no pairs/);
});

Deno.test("pairs: LFW pairs.txt (10-fold and one-fold headers) and CSV", () => {
  const lfw = parseLfwPairs("2\t1\nAnn\t1\t2\nAnn\t1\tBob\t3\nBob 2 3\r\nCid 1 Ann 2\n", "/d");
  assert.deepEqual(lfw, [
    { a: "/d/Ann/Ann_0001.jpg", b: "/d/Ann/Ann_0002.jpg", same: true, fold: 0 },
    { a: "/d/Ann/Ann_0001.jpg", b: "/d/Bob/Bob_0003.jpg", same: false, fold: 0 },
    { a: "/d/Bob/Bob_0002.jpg", b: "/d/Bob/Bob_0003.jpg", same: true, fold: 1 },
    { a: "/d/Cid/Cid_0001.jpg", b: "/d/Ann/Ann_0002.jpg", same: false, fold: 1 },
  ]);
  assert.equal(parseLfwPairs("1\nA 1 2\nA 1 B 1\n", "x").length, 2);
  assert.throws(
    () => parseLfwPairs("2 1\nA 1 2\nA 1 B 1\n", "x"),
    /promises 2 × \(1 matched \+ 1 mismatched\)/,
  );
  assert.throws(() => parseLfwPairs("1 1\nA 1 B 1\nA 1 2\n", "x"), /matched pair must be/);
  assert.throws(() => parseLfwPairs("1 1\nA 0 2\nA 1 B 1\n", "x"), CorruptFileError);
  assert.throws(() => parseLfwPairs("ten 300\n", "x"), /header/);

  const csv = parseCsvPairs(
    "path_a,path_b,same\na.jpg,b.jpg,1\na.jpg,c.jpg,0\n/abs/d.jpg,b.jpg,true\nc.jpg,d.jpg,no\n",
    "/i",
    2,
  );
  assert.deepEqual(csv.map((p) => [p.a, p.same, p.fold]), [
    ["/i/a.jpg", true, 0],
    ["/i/a.jpg", false, 1],
    ["/abs/d.jpg", true, 1],
    ["/i/c.jpg", false, 0],
  ]);
  assert.deepEqual(parseCsvPairs("a,b,1,3\nc,d,0,7\n", ".").map((p) => p.fold), [0, 1]);
  assert.throws(() => parseCsvPairs("a,b,maybe\n", "."), /'same' must be/);
  assert.throws(() => parseCsvPairs("a,b,1,0\nc,d,0\n", "."), /every line or on none/);
  assert.throws(() => parseCsvPairs("path_a,path_b,same\n", "."), /no pairs/);
  assert.equal(parsePairs("x,y,1\n", "p.CSV", ".").length, 1);
});

Deno.test("pairs: fuzzed pair files fail only with typed errors", () => {
  const r = rng(11);
  const base = ["2 1", "Ann 1 2", "Ann 1 Bob 3", "Bob 2 3", "Cid 1 Ann 2"];
  const junk = ["", " ", "\t", "0", "-1", "x", "1e3", ",", "\u0000", "Ann", "9999999999999999999"];
  for (let it = 0; it < 500; it++) {
    const lines = [...base];
    for (let m = 0; m < 1 + Math.floor(r() * 3); m++) {
      const i = Math.floor(r() * lines.length), t = lines[i].split(" ");
      t[Math.floor(r() * t.length)] = junk[Math.floor(r() * junk.length)];
      lines[i] = r() < 0.2 ? "" : t.join(r() < 0.5 ? " " : ",");
    }
    const text = lines.join("\n");
    for (const parse of [() => parseLfwPairs(text, "d"), () => parseCsvPairs(text, "d")]) {
      try {
        parse();
      } catch (e) {
        assert.ok(
          e instanceof CorruptFileError,
          `untyped ${(e as Error).message} on ${JSON.stringify(text)}`,
        );
      }
    }
  }
});

Deno.test("eval --pairs: tiny LFW folder with known answers (shipped synthetic face bundle)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "repmlp-lfw-" });
  const ids = renderIdentities(500, 4, 1, 96, 0);
  const plane = 3 * 96 * 96;
  const names = ["Ann", "Bob", "Cid", "Dee"];
  for (let i = 0; i < 4; i++) {
    await Deno.mkdir(`${dir}/${names[i]}`);
    const px = ids.images.subarray(i * plane, (i + 1) * plane);
    await Deno.writeFile(`${dir}/${names[i]}/${names[i]}_0001.jpg`, encodeJpeg(px, 96, 96));
  }
  // A genuine pair of one file with itself has cosine exactly 1; two identities score below 1.
  // So every fold's threshold separates them: accuracy 100 % ± 0, AUC 1, TAR 1 at every FAR.
  await Deno.writeTextFile(
    `${dir}/pairs.txt`,
    "2 2\nAnn 1 1\nBob 1 1\nAnn 1 Bob 1\nCid 1 Dee 1\nCid 1 1\nDee 1 1\nAnn 1 Cid 1\nBob 1 Dee 1\n",
  );
  const text = await runCliOk("eval", [
    `${ROOT}weights/face-synthetic-demo.int8.safetensors`,
    "--pairs",
    `${dir}/pairs.txt`,
    "--images",
    dir,
    "--align",
    "none",
    "--json",
    `${dir}/r.json`,
  ]);
  const r = JSON.parse(await Deno.readTextFile(`${dir}/r.json`));
  assert.equal(r.folds, 2);
  assert.deepEqual(r.pairs, { positive: 4, negative: 4 });
  assert.equal(r.images, 4);
  assert.deepEqual(r.foldAccuracy, [1, 1]);
  assert.equal(r.auc, 1);
  assert.equal(r.tarAtFar["0.001"], 1);
  for (const [i, s] of r.scores.entries()) {
    if (i % 4 < 2) assert.ok(Math.abs(s - 1) < 1e-5, `genuine score ${s}`);
    else assert.ok(s < 0.999, `impostor score ${s}`);
  }
  assert.match(text, /accuracy 100\.00 % ± 0\.00 %/);
  // A missing image is a clear error, not a crash.
  await Deno.writeTextFile(`${dir}/bad.csv`, "Ann/Ann_0001.jpg,nope.jpg,1\n");
  const bad = await runCli("eval", [
    `${ROOT}weights/face-synthetic-demo.int8.safetensors`,
    "--pairs",
    `${dir}/bad.csv`,
    "--align",
    "none",
  ]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /nope\.jpg/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("realfaces: genuine only across photos, impostors within a photo or across sexes, the rest left out", () => {
  const f = (id: string, photo: string, sex: "f" | "m", file = `${id}@${photo}`): RealFace => ({
    id,
    photo,
    sex,
    file,
    source: "t",
    score: 1,
  });
  const pairs = realFacePairs([
    f("a", "p1", "f"),
    f("b", "p1", "f"),
    f("c", "p2", "f"),
    f("m", "p3", "m"),
    f("m", "p4", "m"),
  ]);
  const key = (p: { a: string; b: string; same: boolean }) => `${p.a}-${p.b}:${p.same ? "G" : "I"}`;
  assert.deepEqual(pairs.map(key).sort(), [
    "a@p1-b@p1:I", // same photo
    "a@p1-m@p3:I",
    "a@p1-m@p4:I",
    "b@p1-m@p3:I",
    "b@p1-m@p4:I",
    "c@p2-m@p3:I",
    "c@p2-m@p4:I",
    "m@p3-m@p4:G", // same man, two photos
  ]); // a–c and b–c (same sex, different photos) are undecided and left out
  assert.throws(() => realFacePairs([f("a", "p1", "f"), f("a", "p1", "f", "x")]), /twice in one photo/);
});
