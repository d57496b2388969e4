/**
 * Hostile images (issue #10): bombs, lying headers, broken EXIF, corrupt PNG structure, truncation,
 * neutral error messages, event-loop yields, and a fuzz pass over a real photo's JPEG structure.
 * Each case is an exact file built here; costs are measured by `deno task bench:image`, not asserted.
 */
import assert from "node:assert/strict";
import { encode as encodePng } from "fast-png";
import { ImageError, openImage, probeImage } from "../../runtime/src/image/mod.ts";
import { yieldStats } from "../../runtime/src/image/yield.ts";
import { rng } from "../../runtime/src/random.ts";
import { identityImage, toJpeg } from "./api_testutil.ts";
import {
  ihdr,
  imageError,
  kindOf,
  pngChunk,
  pngFile,
  samplePhoto,
  zlib,
  zlibZeros,
} from "./image_testutil.ts";

/** Open + whole-image decode at detector scale + a region at full scale: what a request does. */
async function request(b: Uint8Array, maxPixels?: number) {
  const src = await openImage(b, { maxPixels });
  await src.decode({ targetShortSide: 192 });
  await src.decodeRegion({ x: 0, y: 0, w: src.width / 3, h: src.height / 3 }, { scale: 1 });
  return src;
}

/** Messages clients may see: ours, never a library's ("Corrupt JPG …", "Offset is outside …"). */
const NEUTRAL =
  /^(JPEG data is corrupt|PNG data is corrupt|image is|bytes are not a JPEG or PNG|this PNG|this JPEG|image format|\d+-bit JPEG|region lies)/;

/** Patch a baseline JPEG's SOF0 size. */
function withSofSize(jpg: Uint8Array, w: number, h: number): Uint8Array {
  const b = jpg.slice();
  for (let i = 2; i + 9 < b.length; i++) {
    if (b[i] === 0xff && b[i + 1] === 0xc0) {
      b[i + 5] = h >> 8, b[i + 6] = h & 255, b[i + 7] = w >> 8, b[i + 8] = w & 255;
      return b;
    }
  }
  throw new Error("no SOF0");
}

Deno.test("hostile: 6000×6000 16-bit RGBA PNG deflated from zeros (~280 KB) is refused before inflating", async () => {
  const raw = 6000 * (1 + 6000 * 8);
  const png = pngFile(
    pngChunk("IHDR", ihdr(6000, 6000, 16, 6)),
    pngChunk("IDAT", await zlibZeros(raw)),
    pngChunk("IEND", new Uint8Array()),
  );
  assert.ok(png.length > 200_000 && png.length < 400_000, `${png.length} bytes`);
  const e = await imageError(() => openImage(png));
  assert.equal(e.kind, "image_too_large");
  assert.match(e.message, /MiB of raw pixel data/);
});

Deno.test("hostile: 4000×4000 RGB deflate bomb (~47 KB) is refused by its expansion ratio", async () => {
  const png = pngFile(
    pngChunk("IHDR", ihdr(4000, 4000, 8, 2)),
    pngChunk("IDAT", await zlibZeros(4000 * (1 + 4000 * 3))),
    pngChunk("IEND", new Uint8Array()),
  );
  assert.ok(png.length < 60_000, `${png.length} bytes`);
  const e = await imageError(() => openImage(png));
  assert.equal(e.kind, "image_too_large");
  assert.match(e.message, /expands/);
  // The same pixels as a photo-like PNG (noise, 3:1 or worse) stay accepted: the ratio bound is not a size cap.
  const r = rng(3), n = 300;
  const noisy = new Uint8Array(n * n * 3).map(() => Math.floor(r() * 256));
  const src = await openImage(encodePng({ width: n, height: n, data: noisy, channels: 3, depth: 8 }));
  assert.deepEqual((await src.decode()).pixels.data, noisy);
});

Deno.test("hostile: a 4.5 KB JPEG whose SOF claims 6000×6000 fails fast; 60000×60000 is too large", async () => {
  const jpg = toJpeg(identityImage(1, 0, 96), 96, 96, 90);
  assert.ok(jpg.length < 6000, `${jpg.length} bytes`);
  const lie = withSofSize(jpg, 6000, 6000);
  // Refused from the structure alone (probe does no entropy decoding), with or without a pixel cap.
  assert.equal((await imageError(() => probeImage(lie))).kind, "invalid_image");
  assert.equal((await imageError(() => openImage(lie, { maxPixels: 1e9 }))).kind, "invalid_image");
  assert.match(
    (await imageError(() => openImage(lie))).message,
    /truncated or its header claims more pixels/,
  );
  const huge = withSofSize(jpg, 60000, 60000);
  assert.equal((await imageError(() => openImage(huge))).kind, "image_too_large");
  assert.equal((await imageError(() => openImage(huge, { maxPixels: 4e9 }))).kind, "invalid_image");
  // A PNG header claiming 60000×60000.
  const png = pngFile(
    pngChunk("IHDR", ihdr(60000, 60000, 8, 2)),
    pngChunk("IDAT", await zlib(new Uint8Array(10))),
  );
  assert.equal((await imageError(() => openImage(png))).kind, "image_too_large");
  assert.equal((await imageError(() => openImage(png, { maxPixels: 4e9 }))).kind, "image_too_large");
});

Deno.test("hostile: a valid JPEG with a broken EXIF offset decodes as stored (EXIF ignored)", async () => {
  const w = 40, h = 24, jpg = toJpeg(identityImage(2, 0, 40).subarray(0, w * h * 3), w, h, 92);
  const plain = (await (await openImage(jpg)).decode()).pixels;
  const broken = [
    [0x4d, 0x4d, 0x00, 0x2a, 0xff, 0xff, 0xff, 0x00], // IFD offset far outside
    [0x49, 0x49, 0x2a, 0x00, 0x08, 0x00, 0x00, 0x00, 0xff, 0xff], // 65535 entries, none present
    [0x49, 0x49, 0x2a, 0x00, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 0x12, 0x01, 0x03, 0x00, 0x01], // entry cut off
    [0x49, 0x49], // header cut off
  ];
  for (const tiff of broken) {
    const payload = [0x45, 0x78, 0x69, 0x66, 0, 0, ...tiff];
    const seg = [0xff, 0xe1, (payload.length + 2) >> 8, (payload.length + 2) & 255, ...payload];
    const b = new Uint8Array(jpg.length + seg.length);
    b.set(jpg.subarray(0, 2)), b.set(seg, 2), b.set(jpg.subarray(2), 2 + seg.length);
    const src = await openImage(b);
    assert.equal(src.orientation, 1);
    assert.deepEqual((await src.decode()).pixels, plain);
  }
});

Deno.test("hostile: corrupt PNGs (bad IHDR CRC, palette without PLTE, short IDAT, bad filter) → invalid_image", async () => {
  const w = 16, h = 16;
  const rows = (filter: number) => {
    const raw = new Uint8Array(h * (1 + w * 3));
    for (let y = 0; y < h; y++) raw[y * (1 + w * 3)] = filter;
    return raw;
  };
  const good = pngFile(
    pngChunk("IHDR", ihdr(w, h, 8, 2)),
    pngChunk("IDAT", await zlib(rows(0))),
    pngChunk("IEND", new Uint8Array()),
  );
  assert.equal(await kindOf(() => request(good)), "ok");
  const cases: Record<string, Uint8Array> = {
    "bad IHDR CRC": pngFile(pngChunk("IHDR", ihdr(w, h, 8, 2), true), pngChunk("IDAT", await zlib(rows(0)))),
    "palette without PLTE": pngFile(
      pngChunk("IHDR", ihdr(w, h, 8, 3)),
      pngChunk("IDAT", await zlib(new Uint8Array(h * (w + 1)))),
    ),
    "IDAT shorter than the image": pngFile(
      pngChunk("IHDR", ihdr(w, h, 8, 2)),
      pngChunk("IDAT", await zlib(rows(0).subarray(0, 5 * (1 + w * 3)))),
    ),
    "IDAT cut mid-stream": pngFile(
      pngChunk("IHDR", ihdr(w, h, 8, 2)),
      pngChunk("IDAT", (await zlib(rows(0))).subarray(0, 6)),
    ),
    "unknown row filter": pngFile(pngChunk("IHDR", ihdr(w, h, 8, 2)), pngChunk("IDAT", await zlib(rows(9)))),
    "bad IHDR fields": pngFile(pngChunk("IHDR", ihdr(w, h, 7, 2)), pngChunk("IDAT", await zlib(rows(0)))),
    "no IDAT": pngFile(pngChunk("IHDR", ihdr(w, h, 8, 2)), pngChunk("IEND", new Uint8Array())),
    "chunk longer than the file": good.slice(0, 40),
  };
  for (const [name, b] of Object.entries(cases)) {
    const e = await imageError(() => request(b));
    assert.equal(e.kind, "invalid_image", name);
    assert.match(e.message, NEUTRAL, name);
  }
});

Deno.test("hostile: truncated real photos (baseline JPEG, PNG) → invalid_image with neutral messages", async () => {
  const photo = await samplePhoto(2);
  for (const frac of [0.05, 0.3, 0.7, 0.98]) {
    const e = await imageError(() => request(photo.slice(0, Math.floor(photo.length * frac))));
    assert.equal(e.kind, "invalid_image", `cut at ${frac}`);
    assert.match(e.message, NEUTRAL);
  }
  // A missing EOI alone is tolerated (the scan data is complete).
  assert.equal(await kindOf(() => request(photo.slice(0, photo.length - 2))), "ok");
  const png = encodePng({ width: 64, height: 64, data: identityImage(4, 0, 64), channels: 3, depth: 8 });
  for (const cut of [20, 60, png.length - 30]) {
    assert.equal(
      (await imageError(() => request(png.slice(0, cut)))).kind,
      "invalid_image",
      `png cut ${cut}`,
    );
  }
});

Deno.test("hostile: decoding yields to the event loop between slices", async () => {
  const photo = await samplePhoto(1);
  yieldStats(0); // yield at every check, so the test does not depend on this machine's speed
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  try {
    const before = yieldStats().yields;
    await request(photo);
    assert.ok(yieldStats().yields - before > 50, "the decoder yielded");
    assert.ok(ticks > 10, `timers ran during the decode (${ticks} ticks)`);
  } finally {
    clearInterval(timer);
    yieldStats(10);
  }
});

Deno.test("hostile: fuzz over a real photo's JPEG structure — typed errors or results, never a crash", async () => {
  const photo = await samplePhoto(3);
  // A small re-encode keeps the loop quick; plus the original's header region for marker damage.
  const base = toJpeg((await (await openImage(photo)).decode({ scale: 0.125 })).pixels.data, 240, 160, 85);
  const r = rng(11);
  const seen = new Map<string, number>();
  for (let i = 0; i < 240; i++) {
    const src = i % 4 === 3 ? photo.subarray(0, 4000) : base;
    const b = src.slice();
    const mode = i % 4;
    if (mode === 0) { // damage the header (tables, SOF, SOS) — first ~600 bytes
      for (let k = 0; k < 1 + Math.floor(r() * 4); k++) b[2 + Math.floor(r() * 600)] = Math.floor(r() * 256);
    } else if (mode === 1) { // damage entropy-coded data
      for (let k = 0; k < 1 + Math.floor(r() * 16); k++) {
        b[700 + Math.floor(r() * (b.length - 700))] ^= 1 << (k % 8);
      }
    } else if (mode === 2) { // random size in SOF
      b.set(withSofSize(base, 1 + Math.floor(r() * 20000), 1 + Math.floor(r() * 20000)));
    }
    let kind = "ok";
    try {
      await request(b, 40_000_000);
    } catch (e) {
      assert.ok(e instanceof ImageError, `case ${i}: ${e}`);
      assert.match(e.message, NEUTRAL, `case ${i}`);
      kind = e.kind;
    }
    seen.set(kind, (seen.get(kind) ?? 0) + 1);
  }
  assert.ok((seen.get("invalid_image") ?? 0) > 50, JSON.stringify([...seen]));
  assert.ok((seen.get("ok") ?? 0) > 20, JSON.stringify([...seen]));
});
