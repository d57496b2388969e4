/**
 * Helpers for the image tests: real photos from `@vladmandic/face-api`'s demo folder (read from the npm
 * package at run time, never committed), hand-built PNG chunks, deflate streams of zeros (bombs), and
 * Debian PIL as the native reference decoder when it is installed.
 */
import { ImageError } from "../../runtime/src/errors.ts";
import { chunk } from "./api_testutil.ts";

/** Bytes of `demo/sample<i>.jpg` (1920×1280 group photos) from the face-api package. */
export async function samplePhoto(i = 1): Promise<Uint8Array> {
  return await Deno.readFile(new URL(import.meta.resolve(`@vladmandic/face-api/demo/sample${i}.jpg`)));
}

/** The error kind a call ends with ("ok" when it succeeds); anything but an ImageError is rethrown. */
export async function kindOf(f: () => unknown): Promise<string> {
  try {
    await f();
  } catch (e) {
    if (e instanceof ImageError) return e.kind;
    throw e;
  }
  return "ok";
}

/** The error a call ends with (fails the test when it succeeds or throws something untyped). */
export async function imageError(f: () => unknown): Promise<ImageError> {
  try {
    await f();
  } catch (e) {
    if (e instanceof ImageError) return e;
    throw e;
  }
  throw new Error("expected an ImageError");
}

/** One PNG chunk (length, type, data, CRC); `badCrc` flips a CRC bit. */
export function pngChunk(type: string, data: Uint8Array, badCrc = false): Uint8Array {
  const c = chunk(type, data);
  if (badCrc) c[c.length - 1] ^= 1;
  return c;
}

/** IHDR payload. */
export function ihdr(w: number, h: number, depth: number, colorType: number): Uint8Array {
  const d = new Uint8Array(13);
  const dv = new DataView(d.buffer);
  dv.setUint32(0, w), dv.setUint32(4, h);
  d[8] = depth, d[9] = colorType;
  return d;
}

/** A PNG file from chunks. */
export function pngFile(...chunks: Uint8Array[]): Uint8Array {
  const sig = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const n = chunks.reduce((s, c) => s + c.length, 8);
  const out = new Uint8Array(n);
  out.set(sig);
  let o = 8;
  for (const c of chunks) out.set(c, o), o += c.length;
  return out;
}

/** zlib stream of `n` zero bytes, compressed in 1 MiB pieces (never holds the raw data). */
export async function zlibZeros(n: number): Promise<Uint8Array> {
  const cs = new CompressionStream("deflate");
  const w = cs.writable.getWriter();
  const chunk = new Uint8Array(2 ** 20);
  const done = new Response(cs.readable).arrayBuffer();
  for (let left = n; left > 0; left -= chunk.length) {
    await w.write(left >= chunk.length ? chunk : chunk.subarray(0, left));
  }
  await w.close();
  return new Uint8Array(await done);
}

/** zlib stream of `data`. */
export async function zlib(data: Uint8Array): Promise<Uint8Array> {
  const cs = new CompressionStream("deflate");
  const w = cs.writable.getWriter();
  const done = new Response(cs.readable).arrayBuffer();
  await w.write(data.slice());
  await w.close();
  return new Uint8Array(await done);
}

/** Debian's python3 with PIL, if present (the native reference decoder). */
export const PYTHON = "/usr/bin/python3";
export const hasPil: boolean = (() => {
  try {
    return new Deno.Command(PYTHON, { args: ["-c", "import PIL"], stdout: "null", stderr: "null" })
      .outputSync()
      .success;
  } catch {
    return false;
  }
})();

/** Run a PIL script with the given stdin; returns stdout. */
export async function pil(script: string, stdin: Uint8Array = new Uint8Array()): Promise<Uint8Array> {
  const p = new Deno.Command(PYTHON, {
    args: ["-c", script],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  })
    .spawn();
  const w = p.stdin.getWriter();
  await w.write(stdin);
  await w.close();
  const o = await p.output();
  if (!o.success) throw new Error(new TextDecoder().decode(o.stderr));
  return o.stdout;
}
