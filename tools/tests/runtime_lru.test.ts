// The per-size ORT session pool of runtime/src/backends/mod.ts: bounded, releases what it evicts,
// never releases a session while a run is using it. Resources here are plain objects that count
// their releases (the pool is the component under test; core_resolution.test.ts runs it with ORT).
import assert from "node:assert/strict";
import { LruPool } from "../../runtime/src/backends/lru.ts";

class Res {
  released = 0;
  runs = 0;
  constructor(readonly key: string) {}
  release() {
    this.released++;
    return Promise.resolve();
  }
}

function pool(max: number) {
  const made: Res[] = [];
  const p = new LruPool<Res>(max);
  const use = (k: string, fn: (r: Res) => Promise<void> = (r) => Promise.resolve(void r.runs++)) =>
    p.use(k, () => {
      const r = new Res(k);
      made.push(r);
      return Promise.resolve(r);
    }, fn);
  return { p, made, use };
}

Deno.test("lru: many sizes keep at most `max` resources, the least recently used is released once", async () => {
  const { p, made, use } = pool(4);
  for (let i = 0; i < 20; i++) await use(`${i}`);
  assert.equal(made.length, 20);
  assert.deepEqual(p.keys(), ["16", "17", "18", "19"]);
  assert.deepEqual(made.map((r) => r.released), [...Array(16).fill(1), 0, 0, 0, 0]);
  await use("17"); // a hit moves it to the end and creates nothing
  assert.equal(made.length, 20);
  assert.deepEqual(p.keys(), ["16", "18", "19", "17"]);
  await use("new");
  assert.deepEqual(p.keys(), ["18", "19", "17", "new"]);
  assert.equal(made[16].released, 1);
  await p.clear();
  assert.deepEqual(p.keys(), []);
  assert.ok(made.every((r) => r.released === 1), "every resource released exactly once");
});

Deno.test("lru: a resource evicted while in use is released only after its run ends", async () => {
  const { made, use } = pool(1);
  let finish!: () => void;
  const gate = new Promise<void>((r) => finish = r);
  const slow = use("a", async (r) => {
    await gate;
    assert.equal(r.released, 0, "still held while running");
    r.runs++;
  });
  await use("b"); // evicts "a" while it runs
  assert.equal(made[0].released, 0);
  finish();
  await slow;
  assert.equal(made[0].released, 1);
  assert.equal(made[0].runs, 1);
});

Deno.test("lru: a failed creation is forgotten and retried; bad sizes are refused", async () => {
  const p = new LruPool<Res>(2);
  let n = 0;
  const create = () => ++n === 1 ? Promise.reject(new Error("boom")) : Promise.resolve(new Res("x"));
  await assert.rejects(() => p.use("x", create, () => Promise.resolve()), /boom/);
  await p.use("x", create, () => Promise.resolve());
  assert.equal(n, 2);
  assert.deepEqual(p.keys(), ["x"]);
  for (const bad of [0, -1, 1.5, NaN]) assert.throws(() => new LruPool(bad), RangeError);
});
