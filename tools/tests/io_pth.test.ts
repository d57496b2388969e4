import assert from "node:assert/strict";
import { zipSync } from "fflate";
import {
  CorruptFileError,
  InvalidArgumentError,
  UnsafePickleError,
  UnsupportedError,
} from "../../runtime/src/errors.ts";
import { readStateDictFile } from "../../runtime/src/io/files.ts";
import {
  detectFormat,
  openZip,
  readNpz,
  readPth,
  readStateDict,
  unpickle,
  writeSafetensors,
} from "../../runtime/src/io/mod.ts";
import type { Tensor } from "../../runtime/src/tensor.ts";
import { le, makePth, PickleWriter, refCases, REFDATA, stateDictPickle } from "./io_testutil.ts";

function bytesOf(t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

interface KeyInfo {
  key: string;
  shape: number[];
  dtype: string;
  stride_in_pth: number[];
  contiguous_in_pth: boolean;
}

Deno.test("pth: every refdata checkpoint equals its .npz exactly (strides applied)", () => {
  let strided = 0;
  let scalars = 0;
  for (const name of refCases()) {
    const info = JSON.parse(Deno.readTextFileSync(`${REFDATA}${name}/case.json`));
    for (const mode of ["train", "deploy"] as const) {
      const pth = readPth(Deno.readFileSync(`${REFDATA}${name}/${mode}.pth`));
      const npz = readNpz(Deno.readFileSync(`${REFDATA}${name}/${mode}.npz`));
      const keys: KeyInfo[] = info[`state_dict_${mode}`];
      assert.deepEqual([...pth.keys()], keys.map((k) => k.key), `${name}/${mode} key order`);
      assert.deepEqual([...npz.keys()], keys.map((k) => k.key));
      for (const k of keys) {
        const a = pth.get(k.key)!;
        const b = npz.get(k.key)!;
        assert.equal(a.dtype, k.dtype, `${name}/${mode} ${k.key} dtype`);
        assert.equal(b.dtype, k.dtype);
        // case.json (torch) is authoritative for shapes. numpy.savez wrote the 0-d num_batches_tracked
        // as shape (1,), so the .npz shape is only compared for tensors with at least one axis.
        assert.deepEqual(a.shape, k.shape, `${name}/${mode} ${k.key} shape`);
        if (k.shape.length > 0) assert.deepEqual(b.shape, k.shape);
        assert.deepEqual(bytesOf(a), bytesOf(b), `${name}/${mode} ${k.key} bytes`);
        if (!k.contiguous_in_pth) strided++;
        if (k.key.endsWith("num_batches_tracked")) {
          scalars++;
          assert.deepEqual(a.shape, []);
          assert.ok(a.data instanceof BigInt64Array);
          assert.equal(a.data[0], 0n);
        }
      }
    }
  }
  assert.equal(strided, 6, "every deploy fc3.weight of the 6 cases is column-major in the .pth");
  assert.ok(scalars > 0);
});

Deno.test("pth: the strided deploy fc3.weight is the transpose of a naive C-order read", () => {
  const dir = `${REFDATA}net_block_c32_S4_p1x1_h7_k13_gp4`;
  const bytes = Deno.readFileSync(`${dir}/deploy.pth`);
  const w = readPth(bytes).get("fc3.weight")!;
  assert.deepEqual(w.shape, [196, 49, 1, 1]);
  const zip = openZip(bytes);
  const key = "deploy/data/" + [...zip.names()].filter((n) => n.startsWith("deploy/data/")).find((n) => {
    return zip.read(n).length === 196 * 49 * 4;
  })!.slice("deploy/data/".length);
  const storage = new Float32Array(zip.read(key).slice().buffer);
  const d = w.data as Float32Array;
  // stride (1, 196, 196, 196): element [r, c] lives at storage[r + 196·c].
  for (const [r, c] of [[0, 1], [5, 17], [195, 48], [100, 3]]) {
    assert.equal(d[r * 49 + c], storage[r + 196 * c]);
  }
  assert.notDeepEqual(d.slice(0, 49), storage.slice(0, 49));
});

Deno.test("pth: readStateDictFile dispatches on magic bytes", async () => {
  const dir = `${REFDATA}r21_repmlp_c8_p2x2_k13_g1`;
  const a = await readStateDictFile(`${dir}/deploy.pth`);
  const b = await readStateDictFile(`${dir}/deploy.npz`);
  assert.deepEqual([...a.keys()], [...b.keys()]);
  const tmp = await Deno.makeTempFile({ suffix: ".safetensors" });
  try {
    await Deno.writeFile(tmp, writeSafetensors(a));
    const c = await readStateDictFile(tmp);
    for (const [k, t] of a) assert.deepEqual(bytesOf(c.get(k)!), bytesOf(t));
    // Legacy torch.save: raw pickle starting with PROTO 2 + LONG1 magic number.
    await Deno.writeFile(
      tmp,
      new Uint8Array([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8]),
    );
    await assert.rejects(
      () => readStateDictFile(tmp),
      (e) => e instanceof UnsupportedError && /legacy/.test(e.message),
    );
    await Deno.writeFile(tmp, new TextEncoder().encode("hello world, not a checkpoint"));
    await assert.rejects(() => readStateDictFile(tmp), CorruptFileError);
  } finally {
    await Deno.remove(tmp);
  }
  await assert.rejects(() => readStateDictFile(`${dir}/nope.pth`), InvalidArgumentError);
  assert.equal(detectFormat(Deno.readFileSync(`${dir}/train.pth`)), "pth");
  assert.equal(detectFormat(Deno.readFileSync(`${dir}/train.npz`)), "npz");
});

// ---------------------------------------------------------------- hand-built checkpoints

const f32 = (xs: number[]) => le(new Float32Array(xs));

Deno.test("pth: wrapped checkpoints and DataParallel prefixes are unwrapped", () => {
  const storages = { "0": f32([1, 2, 3, 4, 5, 6]), "1": f32([7, 8]) };
  const entries: [string, Parameters<PickleWriter["tensor"]>[0]][] = [
    ["module.fc.weight", { storageKey: "0", storageNumel: 6, size: [2, 3] }],
    ["module.fc.bias", { storageKey: "1", storageNumel: 2, size: [2] }],
  ];
  for (const wrap of [undefined, "state_dict", "model", "model_state_dict"]) {
    const sd = readPth(makePth(stateDictPickle(entries, wrap), storages));
    assert.deepEqual([...sd.keys()], ["fc.weight", "fc.bias"], `wrap=${wrap}`);
    assert.deepEqual([...(sd.get("fc.weight")!.data as Float32Array)], [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(sd.get("fc.weight")!.shape, [2, 3]);
  }
  // Prefix kept when only some keys have it.
  const mixed = readPth(makePth(stateDictPickle([entries[0], ["fc.bias", entries[1][1]]]), storages));
  assert.deepEqual([...mixed.keys()], ["module.fc.weight", "fc.bias"]);
  // A dict without a state_dict of tensors is refused with a hint.
  const epochOnly = new PickleWriter().proto(2).emptyDict().str("epoch").int(3).setitem().stop().bytes();
  assert.throws(() => readPth(makePth(epochOnly)), UnsupportedError);
});

Deno.test("pth: storage offset, strides, shared storages and dtypes", () => {
  const base = f32([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  const half = le(new Uint16Array([0x3c00, 0x4000, 0xc000])); // 1, 2, -2
  const longs = le(new BigInt64Array([-5n, 2n ** 40n]));
  const ints = le(new Int32Array([7, -7]));
  const bools = new Uint8Array([1, 0, 1]);
  const pkl = stateDictPickle([
    ["t", { storageKey: "0", storageNumel: 12, size: [3, 4], stride: [1, 3] }], // column-major view
    ["slice", { storageKey: "0", storageNumel: 12, offset: 5, size: [2, 2], stride: [4, 1] }],
    ["bcast", { storageKey: "0", storageNumel: 12, offset: 2, size: [2, 3], stride: [0, 1] }],
    ["h", { storageKey: "1", storageType: "HalfStorage", storageNumel: 3, size: [3] }],
    ["bf", { storageKey: "5", storageType: "BFloat16Storage", storageNumel: 1, size: [] }],
    ["l", { storageKey: "2", storageType: "LongStorage", storageNumel: 2, size: [2] }],
    ["i", { storageKey: "3", storageType: "IntStorage", storageNumel: 2, size: [2] }],
    ["b", { storageKey: "4", storageType: "BoolStorage", storageNumel: 3, size: [3] }],
    ["empty", { storageKey: "0", storageNumel: 12, size: [0, 4] }],
  ]);
  const sd = readPth(
    makePth(pkl, {
      "0": base,
      "1": half,
      "2": longs,
      "3": ints,
      "4": bools,
      "5": le(new Uint16Array([0x3f80])),
    }),
  );
  assert.deepEqual([...(sd.get("t")!.data as Float32Array)], [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]);
  assert.deepEqual([...(sd.get("slice")!.data as Float32Array)], [5, 6, 9, 10]);
  assert.deepEqual([...(sd.get("bcast")!.data as Float32Array)], [2, 3, 4, 2, 3, 4]);
  assert.equal(sd.get("h")!.dtype, "float16");
  assert.deepEqual([...(sd.get("h")!.data as Uint16Array)], [0x3c00, 0x4000, 0xc000]);
  assert.equal(sd.get("bf")!.dtype, "bfloat16");
  assert.deepEqual(sd.get("bf")!.shape, []);
  assert.deepEqual([...(sd.get("l")!.data as BigInt64Array)], [-5n, 2n ** 40n]);
  assert.deepEqual([...(sd.get("i")!.data as Int32Array)], [7, -7]);
  assert.equal(sd.get("b")!.dtype, "bool");
  assert.deepEqual(sd.get("empty")!.shape, [0, 4]);
  assert.equal(sd.get("empty")!.data.length, 0);
  // Mutating a result does not touch the archive or other tensors sharing the storage.
  (sd.get("t")!.data as Float32Array)[0] = 99;
  assert.equal((sd.get("bcast")!.data as Float32Array)[0], 2);
});

Deno.test("pth: protocol-4 forms (FRAME, STACK_GLOBAL, MEMOIZE, _rebuild_parameter) are read", () => {
  const ok = new PickleWriter().proto(4).raw(0x95, 200, 0, 0, 0, 0, 0, 0, 0) // FRAME: a hint only
    .stackGlobal("collections", "OrderedDict").raw(0x94).emptyTuple().reduce().raw(0x94)
    .mark().str("p").stackGlobal("torch._utils", "_rebuild_parameter").mark()
    .tensor({ storageKey: "0", storageNumel: 2, size: [2] }).raw(0x88).orderedDict().tuple().reduce()
    .setitems().stop().bytes();
  const sd = readPth(makePth(ok, { "0": f32([1, 2]) }));
  assert.deepEqual([...(sd.get("p")!.data as Float32Array)], [1, 2]);
  // A non-tensor value (here memo[0], the OrderedDict class marker) makes it "not a state_dict": typed, not run.
  const odd = new PickleWriter().proto(4).stackGlobal("collections", "OrderedDict").raw(0x94).emptyTuple()
    .reduce()
    .mark().str("q").raw(0x68, 0).setitems().stop().bytes();
  assert.throws(() => readPth(makePth(odd)), UnsupportedError);
});

// ---------------------------------------------------------------- hostile pickles

function hostileGlobal(module: string, name: string, stack = false): Uint8Array {
  const w = new PickleWriter().proto(stack ? 4 : 2);
  if (stack) w.stackGlobal(module, name);
  else w.global(module, name);
  return w.str("touch /tmp/pwned-by-io-test").raw(0x85).reduce().stop().bytes(); // f(("…",))
}

Deno.test("pth: hostile GLOBALs are refused when read, nothing runs", () => {
  const cases: [string, string][] = [
    ["os", "system"],
    ["posix", "system"],
    ["nt", "system"],
    ["builtins", "eval"],
    ["builtins", "exec"],
    ["builtins", "getattr"],
    ["__builtin__", "eval"],
    ["subprocess", "Popen"],
    ["torch", "load"],
    ["torch._utils", "_rebuild_tensor_v2.__globals__"],
    ["torch.storage", "_load_from_bytes"],
    ["collections", "OrderedDict\nos"],
    ["numpy.core.multiarray", "_reconstruct"],
  ];
  for (const [m, n] of cases) {
    for (const stack of [false, true]) {
      const pkl = hostileGlobal(m, n, stack);
      for (const run of [() => unpickle(pkl), () => readPth(makePth(pkl))]) {
        assert.throws(run, (e) => {
          assert.ok(e instanceof UnsafePickleError, `${m}.${n} stack=${stack}: ${e}`);
          assert.equal(e.code, "unsafe_pickle");
          if (!n.includes("\n")) assert.match(e.message, new RegExp(`${m} ${n.replace(/[.$]/g, "\\$&")}`));
          return true;
        });
      }
    }
  }
  // The GLOBAL is refused before any later opcode is looked at: a persistent loader never runs.
  let loads = 0;
  const pkl = new PickleWriter().proto(2).global("os", "system").str("x").binpersid().stop().bytes();
  assert.throws(() => unpickle(pkl, { persistentLoad: () => (loads++, null) }), UnsafePickleError);
  assert.equal(loads, 0);
  assert.ok(!existsSync("/tmp/pwned-by-io-test"));
});

function existsSync(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

Deno.test("pth: object-building opcodes and REDUCE on non-callables are refused", () => {
  const enc = (s: string) => [...new TextEncoder().encode(s)];
  const streams: [string, Uint8Array][] = [
    ["INST", new PickleWriter().proto(2).mark().str("id").raw(0x69, ...enc("os\nsystem\n")).stop().bytes()],
    ["OBJ", new PickleWriter().proto(2).mark().global("collections", "OrderedDict").raw(0x6f).stop().bytes()],
    [
      "NEWOBJ",
      new PickleWriter().proto(2).global("collections", "OrderedDict").emptyTuple().raw(0x81).stop().bytes(),
    ],
    [
      "NEWOBJ_EX",
      new PickleWriter().proto(4).global("collections", "OrderedDict").emptyTuple().emptyDict().raw(0x92)
        .stop().bytes(),
    ],
    ["EXT1", new PickleWriter().proto(2).raw(0x82, 1).stop().bytes()],
    ["PERSID", new PickleWriter().proto(2).raw(0x50, ...enc("0\n")).stop().bytes()],
    [
      "REDUCE storage",
      new PickleWriter().proto(2).global("torch", "FloatStorage").emptyTuple().reduce().stop().bytes(),
    ],
    [
      "REDUCE dtype",
      new PickleWriter().proto(2).global("torch", "float32").emptyTuple().reduce().stop().bytes(),
    ],
  ];
  for (const [what, pkl] of streams) {
    assert.throws(() => readPth(makePth(pkl)), UnsafePickleError, what);
  }
  // REDUCE on a non-global value is a broken stream.
  const notCallable = new PickleWriter().proto(2).str("os.system").emptyTuple().reduce().stop().bytes();
  assert.throws(() => unpickle(notCallable), CorruptFileError);
});

Deno.test("pth: broken pickles and storages give CorruptFileError", () => {
  const good: [string, Parameters<PickleWriter["tensor"]>[0]][] = [["w", {
    storageKey: "0",
    storageNumel: 4,
    size: [2, 2],
  }]];
  const store = { "0": f32([1, 2, 3, 4]) };
  // Size larger than the storage, offset past the end, strides reaching past the end.
  for (
    const spec of [
      { storageKey: "0", storageNumel: 4, size: [3, 2] },
      { storageKey: "0", storageNumel: 4, offset: 4, size: [1] },
      { storageKey: "0", storageNumel: 4, size: [2, 2], stride: [3, 1] },
      { storageKey: "0", storageNumel: 4, size: [2 ** 20, 2 ** 20], stride: [0, 0] },
    ]
  ) {
    assert.throws(
      () => readPth(makePth(stateDictPickle([["w", spec]]), store)),
      CorruptFileError,
      JSON.stringify(spec),
    );
  }
  // Storage file missing / with the wrong length / numel lies.
  assert.throws(() => readPth(makePth(stateDictPickle(good), {})), CorruptFileError);
  assert.throws(() => readPth(makePth(stateDictPickle(good), { "0": f32([1, 2, 3]) })), CorruptFileError);
  assert.throws(
    () => readPth(makePth(stateDictPickle([["w", { ...good[0][1], storageNumel: 5 }]]), store)),
    CorruptFileError,
  );
  // Truncated pickle stream at every length.
  const pkl = stateDictPickle(good);
  for (let n = 0; n < pkl.length; n++) {
    assert.throws(
      () => readPth(makePth(pkl.subarray(0, n), store)),
      (e) => e instanceof CorruptFileError,
      `len ${n}`,
    );
  }
  // A zip that is not a checkpoint.
  assert.throws(() => readPth(zipSync({ "a.txt": new Uint8Array([1]) })), CorruptFileError);
  // Unknown opcode, bad memo reference, stack underflow.
  for (
    const raw of [[0x80, 2, 0xff], [0x80, 2, 0x68, 7, 0x2e], [0x80, 2, 0x52, 0x2e], [0x80, 2, 0x74, 0x2e]]
  ) {
    assert.throws(() => unpickle(new Uint8Array(raw)), CorruptFileError);
  }
  assert.throws(() => unpickle(new Uint8Array([0x80, 9, 0x4e, 0x2e])), UnsupportedError);
});

Deno.test("pth: truncated or damaged zips give CorruptFileError", () => {
  const bytes = Deno.readFileSync(`${REFDATA}net_block_c8_S1_p2x2_k13_gp4/deploy.pth`);
  readPth(bytes);
  for (
    const n of [
      0,
      1,
      4,
      21,
      22,
      100,
      1000,
      bytes.length / 2,
      bytes.length - 200,
      bytes.length - 23,
      bytes.length - 1,
    ]
  ) {
    assert.throws(() => readPth(bytes.subarray(0, Math.floor(n))), CorruptFileError, `truncated to ${n}`);
  }
  // A flipped byte inside tensor data is caught by the CRC.
  const flipped = bytes.slice();
  flipped[0x400] ^= 0x10;
  assert.throws(() => readPth(flipped), (e) => e instanceof CorruptFileError && /CRC/.test(e.message));
  // Garbage and an unrelated format.
  assert.throws(() => readStateDict(new Uint8Array(100)), CorruptFileError);
});

Deno.test("pth: TorchScript archives get a specific hint", () => {
  const pkl = new PickleWriter().proto(2).global("__torch__.Model", "Model").emptyTuple().reduce().stop()
    .bytes();
  const files = {
    "m/data.pkl": pkl,
    "m/constants.pkl": new Uint8Array([0x80, 2, 0x29, 0x2e]),
    "m/code/__torch__.py": new Uint8Array([0x23]),
  };
  assert.throws(
    () => readPth(zipSync(files)),
    (e) => e instanceof UnsupportedError && /TorchScript/.test(e.message),
  );
});
