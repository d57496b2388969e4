import assert from "node:assert/strict";
import { agreement } from "../eval/agreement.ts";

const norm = (v: number[]) => {
  const q = Math.hypot(...v);
  return v.map((x) => x / q);
};

Deno.test("agreement: identical rows score 1, the normalised mean as a constant student scores the baseline", () => {
  const t = Float32Array.from([norm([1, 0.2, 0]), norm([1, 0, 0.3]), norm([0.8, 0.1, 0.1])].flat());
  const same = agreement(t, t, 3);
  assert.ok(Math.abs(same.mean - 1) < 1e-6 && Math.abs(same.centred - 1) < 1e-6 && same.n === 3);
  const mu = norm([0, 1, 2].map((d) => (t[d] + t[3 + d] + t[6 + d]) / 3));
  const k = agreement(Float32Array.from([mu, mu, mu].flat()), t, 3);
  assert.ok(Math.abs(k.mean - k.constant) < 1e-6, `${k.mean} vs ${k.constant}`);
  assert.ok(k.constant > 0.9 && k.constant < 1, `constant ${k.constant}`);
  // Hand-computed: rows (1,0) vs (0,1) → cosine 0; mean (0.5,0.5) → centred (0.5,-0.5) vs (-0.5,0.5) → -1.
  const r = agreement(Float32Array.from([0, 1, 1, 0]), Float32Array.from([1, 0, 0, 1]), 2);
  assert.ok(
    Math.abs(r.mean) < 1e-6 && Math.abs(r.centred + 1) < 1e-6 && Math.abs(r.constant - Math.SQRT1_2) < 1e-6,
  );
});

Deno.test("agreement: mismatched sizes are a typed error", () => {
  assert.throws(() => agreement(new Float32Array(4), new Float32Array(6), 2), /agreement/);
});
