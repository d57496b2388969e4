/** Shared CLI plumbing: argument parsing and error reporting that says what to do. */
import { parseArgs as nodeParseArgs } from "node:util";
import { InvalidArgumentError, RepmlpError } from "../../runtime/src/errors.ts";

/** Options spec for {@link parseCli}. */
export type CliOptions = Record<
  string,
  { type: "string" | "boolean"; short?: string; multiple?: boolean; default?: string | boolean | string[] }
>;

/**
 * Parse `Deno.args`; unknown flags (and positionals, with `positionals: false`) are an error with
 * the usage text; `--help`/`-h` prints the usage and exits 0.
 */
export function parseCli<T extends CliOptions>(
  usage: string,
  options: T,
  args: string[] = Deno.args,
  { positionals = true }: { positionals?: boolean } = {},
) {
  try {
    const r = nodeParseArgs({
      args,
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals: positionals,
    });
    if ((r.values as { help?: boolean }).help) {
      console.log(usage);
      Deno.exit(0);
    }
    return r;
  } catch (e) {
    fail(`${(e as Error).message}\n\n${usage}`);
  }
}

/** Print an error (with hint) to stderr and exit non-zero. */
export function fail(message: string, hint?: string): never {
  console.error(`error: ${message}`);
  if (hint) console.error(`hint: ${hint}`);
  Deno.exit(1);
}

/** Run a CLI main, turning typed errors into clean messages. */
export async function main(fn: () => Promise<void> | void): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof RepmlpError) fail(`[${e.code}] ${e.message}`, e.hint);
    if (e instanceof Deno.errors.NotFound) fail((e as Error).message, "check the file path");
    throw e;
  }
}

/** Human-readable byte size. */
export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 ** 2).toFixed(2)} MiB`;
}

/** `--input-hw H,W` (also `HxW`, `H×W`); undefined when the flag is absent. */
export function parseHW(s: string | undefined): [number, number] | undefined {
  if (s === undefined) return undefined;
  const m = /^(\d+)\s*[,x×]\s*(\d+)$/.exec(s.trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) {
    throw new InvalidArgumentError(`--input-hw must look like 224,224, got '${s}'`);
  }
  return [Number(m[1]), Number(m[2])];
}

/** A flag holding a JSON object (`--kwargs '{"h": 7}'`); undefined when absent. */
export function parseJsonObject(
  s: string | undefined,
  flag: string,
  example = '{"h": 7}',
): Record<string, unknown> | undefined {
  if (s === undefined || s === "") return undefined;
  try {
    const v = JSON.parse(s);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not a JSON object");
    return v;
  } catch (e) {
    throw new InvalidArgumentError(
      `${flag} is not a JSON object: ${(e as Error).message}`,
      `e.g. ${flag} '${example}'`,
    );
  }
}
