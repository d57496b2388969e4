/** Image intake: header probe, decoders, EXIF orientation, resampling, alignment, and a fuzz pass. */
import assert from "node:assert/strict";
import { encode as encodePng } from "fast-png";
import {
  alignFace,
  fitSimilarity,
  invertAffine,
  type Point,
  templateFor,
} from "../../runtime/src/face/align.ts";
import { ApiError } from "../../runtime/src/server/errors.ts";
import {
  centerCropResize,
  decodeImage,
  orient,
  type Planar,
  probeImage,
  resize,
  toPlanar,
} from "../../runtime/src/server/image.ts";
import { rng } from "../../runtime/src/random.ts";
import { identityImage, pngBombHeader, toJpeg, toPng, withExifOrientation } from "./api_testutil.ts";

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof ApiError) return e.code;
    throw e;
  }
  return "ok";
}

Deno.test("api image: probe reads size from the header and refuses bombs before decoding", () => {
  const png = toPng(identityImage(1, 0, 40), 40, 40);
  assert.deepEqual(probeImage(png), { format: "png", width: 40, height: 40, orientation: 1 });
  const jpg = toJpeg(identityImage(1, 0, 24), 24, 24);
  assert.deepEqual(probeImage(jpg), { format: "jpeg", width: 24, height: 24, orientation: 1 });
  const bomb = pngBombHeader(100_000, 100_000);
  assert.ok(bomb.length < 100);
  assert.equal(code(() => decodeImage(bomb)), "image_too_large");
  assert.equal(code(() => probeImage(png, 1000)), "image_too_large"); // 1600 px > 1000
  assert.equal(
    code(() => probeImage(new TextEncoder().encode("GIF89a\x01\x00\x01\x00\x00\x00\x00"))),
    "unsupported_media_type",
  );
  assert.equal(code(() => probeImage(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]))), "invalid_image");
  assert.equal(code(() => probeImage(new Uint8Array())), "invalid_image");
});

Deno.test("api image: PNG colour types and bit depths all become 8-bit RGB", () => {
  const w = 5, h = 3, n = w * h;
  const grey = Uint8Array.from({ length: n }, (_, i) => i * 17);
  const g = decodeImage(toPng(grey, w, h, 1));
  for (let i = 0; i < n; i++) {
    assert.deepEqual([...g.data.subarray(i * 3, i * 3 + 3)], [grey[i], grey[i], grey[i]]);
  }
  const rgba = Uint8Array.from({ length: n * 4 }, (_, i) => (i * 29) % 256);
  const a = decodeImage(toPng(rgba, w, h, 4));
  for (let i = 0; i < n; i++) {
    assert.deepEqual([...a.data.subarray(i * 3, i * 3 + 3)], [...rgba.subarray(i * 4, i * 4 + 3)]);
  }
  const g16 = Uint16Array.from({ length: n }, (_, i) => i * 4000);
  const d16 = decodeImage(encodePng({ width: w, height: h, data: g16, channels: 1, depth: 16 }));
  for (let i = 0; i < n; i++) assert.equal(d16.data[i * 3], Math.round((g16[i] * 255) / 65535));
  // 1-bit greyscale, rows padded to bytes: 5 px → 1 byte per row.
  const bits = new Uint8Array([0b10100000, 0b01010000, 0b11111000]);
  const d1 = decodeImage(encodePng({ width: w, height: h, data: bits, channels: 1, depth: 1 }));
  assert.deepEqual(
    Array.from({ length: n }, (_, i) => d1.data[i * 3]),
    [255, 0, 255, 0, 0, 0, 255, 0, 255, 0, 255, 255, 255, 255, 255],
  );
  const pal = decodeImage(encodePng({
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

Deno.test("api image: EXIF orientation 1–8 matches the spec, and is read from real JPEG headers", () => {
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
  const d = decodeImage(jpg);
  assert.equal(d.width, 16);
  assert.equal(d.height, 32);
  assert.ok(d.data[(4 * 16 + 8) * 3] < 30, "top is black");
  assert.ok(d.data[(28 * 16 + 8) * 3] > 225, "bottom is white");
});

Deno.test("api image: antialiased resize preserves constants and averages fine detail", () => {
  const c = 3, H = 64, W = 64;
  const flat: Planar = { c, h: H, w: W, data: new Float32Array(c * H * W).fill(77) };
  const r = resize(flat, { x: 0, y: 0, w: W, h: H }, 9, 13);
  assert.ok(r.data.every((v) => Math.abs(v - 77) < 1e-3));
  const up = resize(flat, { x: 0, y: 0, w: W, h: H }, 100, 90);
  assert.ok(up.data.every((v) => Math.abs(v - 77) < 1e-3));
  // Checkerboard → 8×8: an antialiased filter gives the mean; point sampling would give 0 or 255.
  const cb: Planar = { c: 1, h: H, w: W, data: new Float32Array(H * W) };
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) cb.data[y * W + x] = (x + y) % 2 ? 255 : 0;
  const small = resize(cb, { x: 0, y: 0, w: W, h: H }, 8, 8);
  assert.ok(
    small.data.every((v) => Math.abs(v - 127.5) < 2),
    `${Math.min(...small.data)}…${Math.max(...small.data)}`,
  );
  // Centre crop of a 100×50 image to a square takes the middle 50×50.
  const wide: Planar = { c: 1, h: 50, w: 100, data: new Float32Array(5000) };
  for (let y = 0; y < 50; y++) for (let x = 25; x < 75; x++) wide.data[y * 100 + x] = 200;
  const sq = centerCropResize(wide, 10, 10);
  assert.ok(sq.data.every((v) => Math.abs(v - 200) < 1e-3));
});

Deno.test("api image: similarity fit recovers a known transform; alignment lands landmarks on the template", () => {
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
  assert.equal(code(() => fitSimilarity(Array(5).fill([3, 3]), src)), "invalid_request");

  // A 600×600 image with 5 bright dots placed at a scaled, rotated, shifted template: after
  // alignment into 56×56 the dots sit on the 56×56 template (downscale path, scale 1/8).
  const tpl = templateFor(56, 56);
  const place = (p: Point): Point => {
    const c = Math.cos(0.4), sn = Math.sin(0.4);
    return [4 * (c * p[0] - sn * p[1]) + 250, 4 * (sn * p[0] + c * p[1]) + 60];
  };
  const lm = templateFor(112, 112).map(place);
  const big: Planar = { c: 1, h: 600, w: 600, data: new Float32Array(600 * 600) };
  for (const [x, y] of lm) {
    for (let dy = -12; dy <= 12; dy++) {
      for (let dx = -12; dx <= 12; dx++) {
        big.data[(Math.round(y) + dy) * 600 + Math.round(x) + dx] = 255;
      }
    }
  }
  const out = alignFace(big, lm, 56, 56);
  for (const [x, y] of tpl) {
    const v = out.data[Math.floor(y) * 56 + Math.floor(x)];
    assert.ok(v > 150, `template point (${x.toFixed(1)}, ${y.toFixed(1)}) is bright: ${v}`);
  }
  assert.ok(out.data[2 * 56 + 2] < 1, "corner is background");
});

Deno.test("api image: fuzz — corrupt, truncated and random inputs only ever raise ApiError", () => {
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
    const c = code(() => decodeImage(b, 4_000_000));
    assert.ok(allowed.has(c), `case ${i}: ${c}`);
    seen.set(c, (seen.get(c) ?? 0) + 1);
  }
  assert.ok((seen.get("invalid_image") ?? 0) > 100, JSON.stringify([...seen]));
});

Deno.test("api image: toPlanar greyscale uses ITU-R 601 luma", () => {
  const p = toPlanar({ width: 1, height: 1, data: new Uint8Array([200, 100, 50]) }, 1);
  assert.ok(Math.abs(p.data[0] - (0.299 * 200 + 0.587 * 100 + 0.114 * 50)) < 1e-4);
});
