/**
 * Seeded random weights and inputs for tests, benchmarks and demos. BN statistics are drawn like
 * the shared reference cases (mean U[-.5,.5), var U[.5,2), γ U[.5,1.5), β U[-.5,.5)) so folds are
 * exercised with non-trivial BNs.
 */
import { type Mode, type ModelDesc, paramSpecs } from "./arch/ir.ts";
import { type F32, f32, numel, type StateDict } from "./tensor.ts";

/** Small fast seeded PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples (Box–Muller). */
export function randn(shape: readonly number[], seed: number): F32 {
  const r = rng(seed);
  const t = f32(shape);
  for (let i = 0; i < t.data.length; i++) {
    t.data[i] = Math.sqrt(-2 * Math.log(r() || 1e-12)) * Math.cos(2 * Math.PI * r());
  }
  return t;
}

/**
 * A complete random state_dict for `desc` in the given mode. Weights ~ U(-a, a) with
 * a = 1/√fan_in (PyTorch's default conv/linear bound), BN as described above.
 */
export function randomStateDict(desc: ModelDesc, mode: Mode, seed = 0): StateDict {
  const r = rng(seed);
  const u = (lo: number, hi: number) => lo + (hi - lo) * r();
  const sd: StateDict = new Map();
  for (const s of paramSpecs(desc.root, mode)) {
    if (s.dtype === "int64") {
      sd.set(s.key, { dtype: "int64", shape: s.shape, data: new BigInt64Array(1) });
      continue;
    }
    const n = numel(s.shape);
    const d = new Float32Array(n);
    const leaf = s.key.slice(s.key.lastIndexOf(".") + 1);
    const isBN = s.bn === true;
    if (isBN && leaf === "running_mean") { for (let i = 0; i < n; i++) d[i] = u(-0.5, 0.5); }
    else if (isBN && leaf === "running_var") { for (let i = 0; i < n; i++) d[i] = u(0.5, 2); }
    else if (isBN && leaf === "weight") { for (let i = 0; i < n; i++) d[i] = u(0.5, 1.5); }
    else if (isBN && leaf === "bias") { for (let i = 0; i < n; i++) d[i] = u(-0.5, 0.5); }
    else {
      const fanIn = s.shape.length > 1 ? numel(s.shape.slice(1)) : Math.max(1, n);
      const a = 1 / Math.sqrt(fanIn);
      for (let i = 0; i < n; i++) d[i] = u(-a, a);
    }
    sd.set(s.key, { dtype: "float32", shape: s.shape, data: d });
  }
  return sd;
}
