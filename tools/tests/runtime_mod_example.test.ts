// The `@example` in runtime/mod.ts's module doc is code users copy: extract it and run it as written
// (from the repo root, importing the real mod.ts), and check that what it prints matches its comment.
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);
const MOD = new URL("runtime/mod.ts", ROOT);

/** The fenced ```ts blocks of the module doc comment, leading " * " removed. */
function moduleExamples(src: string): string[] {
  const doc = /^\/\*\*([\s\S]*?)\*\//.exec(src)?.[1] ?? "";
  const text = doc.split("\n").map((l) => l.replace(/^\s*\* ?/, "")).join("\n");
  return [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
}

Deno.test("runtime/mod.ts: the module @example runs as written and prints what it says", async () => {
  const examples = moduleExamples(await Deno.readTextFile(MOD));
  assert.equal(examples.length, 1, "one example in the module doc");
  const code = examples[0].replace(`from "./mod.ts"`, `from ${JSON.stringify(MOD.href)}`);
  assert.notEqual(code, examples[0], "the example imports ./mod.ts");
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/example.ts`;
    await Deno.writeTextFile(file, code);
    const r = await new Deno.Command(Deno.execPath(), {
      // As a user of the runtime package runs it: its own import map, no tools-side packages.
      args: [
        "run",
        "-A",
        "--no-config",
        "--import-map=runtime/deno.json",
        "--lock=runtime/deno.lock",
        // The global cache, not the repo's node_modules, which the parallel tests use with the tools-side
        // package set (with a node_modules of its own this took 5 min in one loaded CI-like run, 10 s in another).
        "--node-modules-dir=none",
        file,
      ],
      cwd: ROOT.pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stdout), err = new TextDecoder().decode(r.stderr);
    assert.ok(r.success, `example failed:\n${out}\n${err}`);
    const promised = /console\.log\(.*\); \/\/ (.*)$/m.exec(examples[0])?.[1];
    assert.ok(promised, "the example says what it prints");
    assert.equal(out.trim(), promised.trim());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
