/**
 * The one image pipeline: a training sample (folder dataset → batch) and a served request (HTTP embed)
 * of the same image give the same input tensor, bit for bit; the JPEG decoder against Debian's libjpeg
 * (PIL, with `draft` for the DCT-scaled sizes) on a real photo in every layout; region decode.
 */
import assert from "node:assert/strict";
import { encode as encodePng } from "fast-png";
import { openImage, type RgbImage } from "../../runtime/src/image/mod.ts";
import { createApp } from "../../runtime/src/server/app.ts";
import { faceModelFromForward } from "../../runtime/src/server/served_model.ts";
import { MemoryStore } from "../../runtime/src/server/store/memory.ts";
import { makeBatch } from "../data/augment.ts";
import { loadFolderDataset } from "../data/folder.ts";
import { toJpeg, withExifOrientation } from "./api_testutil.ts";
import { hasPil, imageError, pil, samplePhoto } from "./image_testutil.ts";

/** Part of a real photo as RGB (decoded at 1/4, then cropped): test material in any size. */
async function photoCrop(i: number, w: number, h: number): Promise<RgbImage> {
  const full = (await (await openImage(await samplePhoto(i))).decode({ scale: 0.25 })).pixels;
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    data.set(full.data.subarray((y + 40) * full.width * 3, ((y + 40) * full.width + w) * 3), y * w * 3);
  }
  return { width: w, height: h, data };
}

Deno.test("pipeline: a training sample and a served request of the same image give the same tensor", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Two identities; the probe files are a JPEG with EXIF rotation and a PNG, all 96×80 upright.
    const files: Record<string, Uint8Array> = {};
    for (const [k, id] of [[0, "a"], [1, "b"]] as const) {
      await Deno.mkdir(`${dir}/${id}`);
      for (let j = 0; j < 2; j++) {
        const img = await photoCrop(k * 2 + j + 1, 96, 80);
        files[`${id}/${j}.jpg`] = toJpeg(img.data, 96, 80, 90);
      }
    }
    // Stored 80×96 and rotated by EXIF 6 → upright 96×80 like the others.
    const rot = await photoCrop(5, 80, 96);
    files["a/2_exif.jpg"] = withExifOrientation(toJpeg(rot.data, 80, 96, 90), 6);
    const png = await photoCrop(6, 96, 80);
    files["b/2.png"] = encodePng({ width: 96, height: 80, data: png.data, channels: 3, depth: 8 });
    for (const [name, b] of Object.entries(files)) await Deno.writeFile(`${dir}/${name}`, b);

    const { train } = await loadFolderDataset(dir, "classify");
    assert.deepEqual([train.c, train.h, train.w], [3, 80, 96]);
    const mean = [0.52, 0.45, 0.41], std = [0.27, 0.26, 0.28];

    // The server with a model of the dataset's input size that records what it is fed.
    const fed: Float32Array[] = [];
    const model = faceModelFromForward((x) => {
      fed.push(Float32Array.from(x));
      return new Float32Array(4).fill(1);
    }, { name: "probe", inputSize: [3, 80, 96], dim: 4, threshold: 0.5, preprocess: { mean, std } });
    const app = createApp({
      faceModels: [model],
      classifiers: [],
      store: new MemoryStore(),
      apiKeys: ["k".repeat(24)],
    });

    // Training order: classes sorted, files sorted; every 10th is test (none here with 3 per class).
    const order = ["a/0.jpg", "a/1.jpg", "a/2_exif.jpg", "b/0.jpg", "b/1.jpg", "b/2.png"];
    for (const [i, name] of order.entries()) {
      const sample = makeBatch(train, [i], { pad: 0, flip: false, mean, std }, null).x;
      const res = await app.request("/v1/faces/embed", {
        method: "POST",
        headers: {
          Authorization: `Bearer ${"k".repeat(24)}`,
          "Content-Type": name.endsWith(".png") ? "image/png" : "image/jpeg",
        },
        body: files[name].slice(),
      });
      assert.equal(res.status, 200, `${name}: ${await res.clone().text()}`);
      assert.deepEqual(fed.at(-1), sample, name);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Mean and max absolute difference of two byte arrays of equal length. */
function diff(a: Uint8Array, b: Uint8Array): { mean: number; max: number } {
  assert.equal(a.length, b.length);
  let s = 0, m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    s += d, m = Math.max(m, d);
  }
  return { mean: s / a.length, max: m };
}

const PIL_DECODE = `
import sys, io
from PIL import Image
denom = int(sys.argv[1]) if len(sys.argv) > 1 else 1
im = Image.open(io.BytesIO(sys.stdin.buffer.read()))
if denom > 1: im.draft(im.mode, (im.size[0] // denom, im.size[1] // denom))
im = im.convert("RGB")
sys.stdout.buffer.write(f"{im.size[0]} {im.size[1]}\\n".encode() + im.tobytes())
`;

async function pilDecode(bytes: Uint8Array, denom: number): Promise<RgbImage> {
  const out = await pil(
    PIL_DECODE.replace("int(sys.argv[1]) if len(sys.argv) > 1 else 1", String(denom)),
    bytes,
  );
  const nl = out.indexOf(10);
  const [width, height] = new TextDecoder().decode(out.subarray(0, nl)).split(" ").map(Number);
  return { width, height, data: out.subarray(nl + 1) };
}

Deno.test({
  name:
    "pipeline: JPEG decode matches libjpeg (PIL draft) at 1, 1/2, 1/4, 1/8 in every layout of a real photo",
  ignore: !hasPil,
  async fn() {
    const photo = await samplePhoto(4);
    // Re-encode a 641×479 part (odd sizes: partial MCUs) in each layout with PIL itself.
    const variants = await pil(
      `
import sys, io, struct
from PIL import Image
im = Image.open(io.BytesIO(sys.stdin.buffer.read())).convert("RGB").crop((300, 200, 941, 679))
out = []
for name, kw, mode in [("420", {"quality": 90}, "RGB"), ("444", {"quality": 90, "subsampling": 0}, "RGB"),
                       ("422", {"quality": 90, "subsampling": 1}, "RGB"), ("prog", {"quality": 85, "progressive": True}, "RGB"),
                       ("grey", {"quality": 85}, "L"), ("cmyk", {"quality": 95}, "CMYK")]:
    b = io.BytesIO(); im.convert(mode).save(b, "JPEG", **kw); d = b.getvalue()
    out.append(struct.pack(">4sI", name.ljust(4).encode(), len(d)) + d)
sys.stdout.buffer.write(b"".join(out))
`,
      photo,
    );
    // Bounds (mean |Δ| per channel value, 0..255): the IDCT and colour maths agree to rounding; where
    // chroma is subsampled, libjpeg upsamples with a triangle filter at full size, we replicate.
    const bound: Record<string, number[]> = {
      "420": [0.6, 0.1, 0.1, 0.1],
      "444": [0.1, 0.1, 0.1, 0.1],
      "422": [0.8, 1.5, 2, 2],
      "prog": [0.6, 0.1, 0.1, 0.1],
      "grey": [0.1, 0.1, 0.1, 0.1],
      "cmyk": [0.1, 0.1, 0.1, 0.1],
    };
    let o = 0;
    while (o < variants.length) {
      const name = new TextDecoder().decode(variants.subarray(o, o + 4)).trim();
      const len = new DataView(variants.buffer, variants.byteOffset + o + 4).getUint32(0);
      const jpg = variants.slice(o + 8, o + 8 + len);
      o += 8 + len;
      const src = await openImage(jpg);
      if (name === "prog") {
        // Progressive files keep their coefficients in memory, within a budget.
        assert.equal(
          (await imageError(() => openImage(jpg, { maxCoefficientBytes: 100_000 }))).kind,
          "image_too_large",
        );
      }
      for (const [k, denom] of [1, 2, 4, 8].entries()) {
        const ours = (await src.decode({ scale: (1 / denom) as 1 })).pixels;
        const ref = await pilDecode(jpg, denom);
        assert.deepEqual([ours.width, ours.height], [ref.width, ref.height], `${name} 1/${denom} size`);
        const d = diff(ours.data, ref.data);
        assert.ok(
          d.mean <= bound[name][k],
          `${name} 1/${denom}: mean |Δ| ${d.mean.toFixed(3)} > ${bound[name][k]}`,
        );
      }
    }
  },
});

Deno.test("pipeline: a region decoded at a finer scale matches the same area of the whole decode", async () => {
  const photo = await samplePhoto(1);
  const src = await openImage(photo);
  const whole = (await src.decode({ scale: 0.5 })).pixels;
  const box = { x: 701, y: 333, w: 300, h: 250 };
  const reg = await src.decodeRegion(box, { scale: 0.5 });
  assert.ok(reg.x <= box.x / 2 && reg.y <= box.y / 2, "covers the box's origin");
  assert.ok(
    (reg.x + reg.pixels.width) * 2 >= box.x + box.w && (reg.y + reg.pixels.height) * 2 >= box.y + box.h,
  );
  for (let y = 0; y < reg.pixels.height; y++) {
    const a = reg.pixels.data.subarray(y * reg.pixels.width * 3, (y + 1) * reg.pixels.width * 3);
    const o = ((reg.y + y) * whole.width + reg.x) * 3;
    assert.deepEqual(a, whole.data.subarray(o, o + a.length), `row ${y}`);
  }
  // targetShortSide picks the smallest sufficient scale for the region.
  assert.equal((await src.decodeRegion(box, { targetShortSide: 120 })).scale, 0.5);
  assert.equal((await src.decodeRegion(box, { targetShortSide: 60 })).scale, 0.25);
  assert.equal((await src.decode({ targetShortSide: 150 })).scale, 0.125);
});

Deno.test("pipeline: regions of EXIF-oriented images agree with the whole decode and cover the box (odd sizes)", async () => {
  const img = await photoCrop(2, 341, 179); // not a multiple of 8: flipped axes start mid-pixel
  const jpg = toJpeg(img.data, img.width, img.height, 90);
  for (let o = 1; o <= 8; o++) {
    const src = await openImage(withExifOrientation(jpg, o));
    for (const scale of [1, 0.5, 0.25, 0.125] as const) {
      const whole = await src.decode({ scale });
      const box = { x: 31, y: 17, w: 103, h: 70 };
      const reg = await src.decodeRegion(box, { scale });
      const dx = reg.x - whole.x, dy = reg.y - whole.y, p = reg.pixels;
      assert.ok(Number.isInteger(dx) && Number.isInteger(dy), `o${o} 1/${1 / scale}: ${dx}, ${dy}`);
      assert.ok(reg.x <= box.x * scale && reg.y <= box.y * scale, `o${o} 1/${1 / scale} origin`);
      assert.ok(reg.x + p.width >= (box.x + box.w) * scale && reg.y + p.height >= (box.y + box.h) * scale);
      for (let y = 0; y < p.height; y++) {
        const o0 = ((dy + y) * whole.pixels.width + dx) * 3;
        assert.deepEqual(
          p.data.subarray(y * p.width * 3, (y + 1) * p.width * 3),
          whole.pixels.data.subarray(o0, o0 + p.width * 3),
          `o${o} 1/${1 / scale} row ${y}`,
        );
      }
    }
  }
});
