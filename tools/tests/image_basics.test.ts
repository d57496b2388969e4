/** Image pipeline basics: header probe, PNG decoder, EXIF orientation, resampling, alignment, and a fuzz pass. */
import assert from "node:assert/strict";
import { encode as encodePng } from "fast-png";
import {
  alignFace,
  centerCropResize,
  fitSimilarity,
  invertAffine,
  openImage,
  orient,
  type Point,
  probeImage,
  resize,
  type RgbImage,
  templateFor,
  toPlanar,
} from "../../runtime/src/image/mod.ts";
import { rng } from "../../runtime/src/random.ts";
import { identityImage, pngBombHeader, toJpeg, toPng, withExifOrientation } from "./api_testutil.ts";
import { kindOf as code } from "./image_testutil.ts";

/** Full-size upright RGB of an image. */
async function decodeImage(b: Uint8Array, maxPixels?: number): Promise<RgbImage> {
  return (await (await openImage(b, { maxPixels })).decode()).pixels;
}

/** A grey RGB image from a per-pixel value function. */
function rgbOf(w: number, h: number, f: (x: number, y: number) => number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) data.fill(f(x, y), (y * w + x) * 3, (y * w + x) * 3 + 3);
  }
  return { width: w, height: h, data };
}

Deno.test("image: probe reads size from the header and refuses bombs before decoding", async () => {
  const png = toPng(identityImage(1, 0, 40), 40, 40);
  assert.deepEqual(probeImage(png), { format: "png", width: 40, height: 40, orientation: 1, channels: 3 });
  const jpg = toJpeg(identityImage(1, 0, 24), 24, 24);
  assert.deepEqual(probeImage(jpg), { format: "jpeg", width: 24, height: 24, orientation: 1, channels: 3 });
  const bomb = pngBombHeader(100_000, 100_000);
  assert.ok(bomb.length < 100);
  assert.equal(await code(() => decodeImage(bomb)), "image_too_large");
  assert.equal(await code(() => probeImage(png, { maxPixels: 1000 })), "image_too_large"); // 1600 px > 1000
  assert.equal(
    await code(() => probeImage(new TextEncoder().encode("GIF89a\x01\x00\x01\x00\x00\x00\x00"))),
    "unsupported_media_type",
  );
  assert.equal(await code(() => probeImage(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]))), "invalid_image");
  assert.equal(await code(() => probeImage(new Uint8Array())), "invalid_image");
});

Deno.test("image: PNG colour types and bit depths all become 8-bit RGB", async () => {
  const w = 5, h = 3, n = w * h;
  const grey = Uint8Array.from({ length: n }, (_, i) => i * 17);
  const g = await decodeImage(toPng(grey, w, h, 1));
  for (let i = 0; i < n; i++) {
    assert.deepEqual([...g.data.subarray(i * 3, i * 3 + 3)], [grey[i], grey[i], grey[i]]);
  }
  const rgba = Uint8Array.from({ length: n * 4 }, (_, i) => (i * 29) % 256);
  const a = await decodeImage(toPng(rgba, w, h, 4));
  for (let i = 0; i < n; i++) {
    assert.deepEqual([...a.data.subarray(i * 3, i * 3 + 3)], [...rgba.subarray(i * 4, i * 4 + 3)]);
  }
  const g16 = Uint16Array.from({ length: n }, (_, i) => i * 4000);
  const d16 = await decodeImage(encodePng({ width: w, height: h, data: g16, channels: 1, depth: 16 }));
  for (let i = 0; i < n; i++) assert.equal(d16.data[i * 3], Math.round((g16[i] * 255) / 65535));
  // 1-bit greyscale, rows padded to bytes: 5 px → 1 byte per row.
  const bits = new Uint8Array([0b10100000, 0b01010000, 0b11111000]);
  const d1 = await decodeImage(encodePng({ width: w, height: h, data: bits, channels: 1, depth: 1 }));
  assert.deepEqual(
    Array.from({ length: n }, (_, i) => d1.data[i * 3]),
    [255, 0, 255, 0, 0, 0, 255, 0, 255, 0, 255, 255, 255, 255, 255],
  );
  const pal = await decodeImage(encodePng({
    width: 2,
    height: 1,
    data: new Uint8Array([1, 0]),
    channels: 1,
    depth: 8,
    palette: [[10, 20, 30], [200, 100, 50]],
  }));
  assert.deepEqual([...pal.data], [200, 100, 50, 10, 20, 30]);
});

/** Reference EXIF transforms on a planar grid of ids: the display image for each orientation. */
function exifReference(W: number, H: number, o: number): { w: number; h: number; ids: number[] } {
  const at = (x: number, y: number) => y * W + x;
  const out: number[] = [];
  const swap = o >= 5;
  const w = swap ? H : W, h = swap ? W : H;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      // Defined by the EXIF spec's row/column meaning of the stored image.
      const m: Record<number, [number, number]> = {
        1: [x, y],
        2: [W - 1 - x, y], // mirror horizontal
        3: [W - 1 - x, H - 1 - y], // rotate 180
        4: [x, H - 1 - y], // mirror vertical
        5: [y, x], // transpose
        6: [y, H - 1 - x], // rotate 90 CW to display
        7: [W - 1 - y, H - 1 - x], // transverse
        8: [W - 1 - y, x], // rotate 90 CCW to display
      };
      out.push(at(...m[o]));
    }
  }
  return { w, h, ids: out };
}

Deno.test("image: EXIF orientation 1–8 matches the spec, and is read from real JPEG headers", async () => {
  const W = 3, H = 2;
  const data = new Uint8Array(W * H * 3);
  for (let i = 0; i < W * H; i++) data[i * 3] = i;
  for (let o = 1; o <= 8; o++) {
    const r = orient({ width: W, height: H, data }, o);
    const ref = exifReference(W, H, o);
    assert.equal(r.width, ref.w);
    assert.equal(r.height, ref.h);
    assert.deepEqual(Array.from({ length: W * H }, (_, i) => r.data[i * 3]), ref.ids, `orientation ${o}`);
  }
  // 32×16 JPEG: left half black, right half white. Orientation 6 → 16×32, top half black.
  const w = 32, h = 16, img = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = w / 2; x < w; x++) img.fill(255, (y * w + x) * 3, (y * w + x) * 3 + 3);
  }
  const jpg = withExifOrientation(toJpeg(img, w, h, 95), 6);
  assert.equal(probeImage(jpg).orientation, 6);
  const d = await decodeImage(jpg);
  assert.equal(d.width, 16);
  assert.equal(d.height, 32);
  assert.ok(d.data[(4 * 16 + 8) * 3] < 30, "top is black");
  assert.ok(d.data[(28 * 16 + 8) * 3] > 225, "bottom is white");
});

Deno.test("image: antialiased resize preserves constants and averages fine detail", () => {
  const H = 64, W = 64;
  const flat = rgbOf(W, H, () => 77);
  const r = resize(flat, { x: 0, y: 0, w: W, h: H }, 9, 13, 3);
  assert.ok(r.data.every((v) => Math.abs(v - 77) < 1e-3));
  const up = resize(flat, { x: 0, y: 0, w: W, h: H }, 100, 90, 3);
  assert.ok(up.data.every((v) => Math.abs(v - 77) < 1e-3));
  // Checkerboard → 8×8: an antialiased filter gives the mean; point sampling would give 0 or 255.
  const cb = rgbOf(W, H, (x, y) => ((x + y) % 2 ? 255 : 0));
  const small = resize(cb, { x: 0, y: 0, w: W, h: H }, 8, 8, 1);
  assert.ok(
    small.data.every((v) => Math.abs(v - 127.5) < 2),
    `${Math.min(...small.data)}…${Math.max(...small.data)}`,
  );
  // Centre crop of a 100×50 image to a square takes the middle 50×50.
  const wide = rgbOf(100, 50, (x) => (x >= 25 && x < 75 ? 200 : 0));
  const sq = centerCropResize(wide, 10, 10, 1);
  assert.ok(sq.data.every((v) => Math.abs(v - 200) < 1e-3));
});

Deno.test("image: similarity fit recovers a known transform; alignment lands landmarks on the template", async () => {
  const s = 1.7, th = 0.3, tx = 12.5, ty = -4;
  const T = (p: Point): Point => [
    s * (Math.cos(th) * p[0] - Math.sin(th) * p[1]) + tx,
    s * (Math.sin(th) * p[0] + Math.cos(th) * p[1]) + ty,
  ];
  const src: Point[] = [[10, 20], [50, 22], [31, 40], [15, 60], [47, 61]];
  const m = fitSimilarity(src, src.map(T));
  const expect = [s * Math.cos(th), -s * Math.sin(th), tx, s * Math.sin(th), s * Math.cos(th), ty];
  m.forEach((v, i) => assert.ok(Math.abs(v - expect[i]) < 1e-9, `m[${i}] ${v} vs ${expect[i]}`));
  const inv = invertAffine(m);
  const back = [inv[0] * 100 + inv[1] * 50 + inv[2], inv[3] * 100 + inv[4] * 50 + inv[5]];
  const fwd = T(back as Point);
  assert.ok(Math.abs(fwd[0] - 100) < 1e-9 && Math.abs(fwd[1] - 50) < 1e-9);
  assert.equal(await code(() => fitSimilarity(Array(5).fill([3, 3]), src)), "invalid_request");

  // A 600×600 image with 5 bright dots placed at a scaled, rotated, shifted template: after
  // alignment into 56×56 the dots sit on the 56×56 template (downscale path, scale 1/8).
  const tpl = templateFor(56, 56);
  const place = (p: Point): Point => {
    const c = Math.cos(0.4), sn = Math.sin(0.4);
    return [4 * (c * p[0] - sn * p[1]) + 250, 4 * (sn * p[0] + c * p[1]) + 60];
  };
  const lm = templateFor(112, 112).map(place);
  const big = rgbOf(
    600,
    600,
    (
      x,
      y,
    ) => (lm.some(([px, py]) => Math.abs(x - Math.round(px)) <= 12 && Math.abs(y - Math.round(py)) <= 12)
      ? 255
      : 0),
  );
  const out = alignFace(big, lm, 56, 56, 1);
  for (const [x, y] of tpl) {
    const v = out.data[Math.floor(y) * 56 + Math.floor(x)];
    assert.ok(v > 150, `template point (${x.toFixed(1)}, ${y.toFixed(1)}) is bright: ${v}`);
  }
  assert.ok(out.data[2 * 56 + 2] < 1, "corner is background");
});

Deno.test("image: fuzz — corrupt, truncated and random inputs only ever raise ImageError", async () => {
  const r = rng(42);
  const jpg = toJpeg(identityImage(3, 0, 48), 48, 48);
  const png = toPng(identityImage(3, 0, 48), 48, 48);
  const allowed = new Set(["ok", "invalid_image", "unsupported_media_type", "image_too_large"]);
  const seen = new Map<string, number>();
  for (let i = 0; i < 300; i++) {
    const base = i % 2 ? jpg : png;
    let b: Uint8Array;
    switch (i % 3) {
      case 0: // truncate
        b = base.slice(0, Math.floor(r() * base.length));
        break;
      case 1: // flip bytes
        b = base.slice();
        for (let k = 0; k < 1 + Math.floor(r() * 8); k++) {
          b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
        }
        break;
      default: // random bytes behind a valid signature
        b = new Uint8Array(16 + Math.floor(r() * 200)).map(() => Math.floor(r() * 256));
        b.set(base.subarray(0, 8));
    }
    const c = await code(() => decodeImage(b, 4_000_000));
    assert.ok(allowed.has(c), `case ${i}: ${c}`);
    seen.set(c, (seen.get(c) ?? 0) + 1);
  }
  assert.ok((seen.get("invalid_image") ?? 0) > 100, JSON.stringify([...seen]));
});

Deno.test("image: toPlanar greyscale uses ITU-R 601 luma", () => {
  const p = toPlanar({ width: 1, height: 1, data: new Uint8Array([200, 100, 50]) }, 1);
  assert.ok(Math.abs(p.data[0] - (0.299 * 200 + 0.587 * 100 + 0.114 * 50)) < 1e-4);
});
