// Running a CLI task as a user does (`deno run -A --node-modules-dir=auto tools/cli/<script>.ts …` from the repo root, as the tasks do), for
// the tests that check what a CLI prints and how it exits.
import assert from "node:assert/strict";

/** The repository root (absolute path, trailing slash). */
export const ROOT: string = new URL("../../", import.meta.url).pathname;

/** What a CLI run left: exit code, stdout, stderr. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `tools/cli/<script>.ts` with `args` in a fresh Deno process from the repo root. */
export async function runCli(script: string, args: string[]): Promise<CliRun> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--node-modules-dir=auto", `${ROOT}tools/cli/${script}.ts`, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** {@link runCli} that must exit 0; returns stdout followed by stderr. */
export async function runCliOk(script: string, args: string[]): Promise<string> {
  const r = await runCli(script, args);
  const text = r.stdout + r.stderr;
  assert.equal(r.code, 0, text);
  return text;
}
