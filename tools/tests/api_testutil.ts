/**
 * Helpers for the API tests: small real RepMLPNet models run by the reference forward (random
 * weights, folded to deploy mode), synthetic identity images encoded with the same JPEG/PNG
 * libraries the server decodes with, and a real `Deno.serve` on a free port.
 */
import jpeg from "jpeg-js";
import { encode as encodePng } from "fast-png";
import { buildModel } from "../../runtime/src/arch/registry.ts";
import { foldStateDict } from "../../runtime/src/fold.ts";
import { bundleFromConversion } from "../../runtime/src/deploy_model.ts";
import { randomStateDict, rng } from "../../runtime/src/random.ts";
import { forward } from "../../runtime/src/reference.ts";
import { f32 } from "../../runtime/src/tensor.ts";
import { FASHION_MNIST_CLASSES } from "../data/fashion_mnist.ts";
import { type AppOptions, createApp } from "../../runtime/src/server/app.ts";
import { centerCropResize, normalizePixels, toUint8 } from "../../runtime/src/image/mod.ts";
import {
  type ClassifierModel,
  classifierModelFromForward,
  type FaceModel,
  faceModelFromForward,
} from "../../runtime/src/server/served_model.ts";

/**
 * A RepMLPNet (2 stages, 32×32 RGB input, random weights folded to deploy mode) run by the
 * reference forward; its 32-way head is the embedding. A fixed standardisation layer (mean/std of
 * the head over 16 calibration images) follows it: random heads put every image in nearly the same
 * direction, and centring spreads them out as a trained model would.
 */
export function testFaceModel(name = "tiny-face", seed = 1): FaceModel {
  const desc = tinyDescs().face;
  const sd = foldStateDict(desc, randomStateDict(desc, "train", seed));
  const pre = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
  const dim = 32;
  const raw = (x: Float32Array, n: number) => forward(desc, sd, f32([n, 3, 32, 32], x), "deploy").data;
  const calN = 16, cal = new Float32Array(calN * 3 * 32 * 32);
  for (let i = 0; i < calN; i++) {
    const p = centerCropResize({ width: 96, height: 96, data: identityImage(500 + i) }, 32, 32, 3);
    cal.set(normalizePixels(toUint8(p), 3, 32 * 32, pre.mean, pre.std), i * 3 * 32 * 32);
  }
  const y = raw(cal, calN), mean = new Float32Array(dim), inv = new Float32Array(dim);
  for (let i = 0; i < calN; i++) for (let j = 0; j < dim; j++) mean[j] += y[i * dim + j] / calN;
  for (let i = 0; i < calN; i++) {
    for (let j = 0; j < dim; j++) inv[j] += (y[i * dim + j] - mean[j]) ** 2 / calN;
  }
  for (let j = 0; j < dim; j++) inv[j] = 1 / Math.sqrt(inv[j] + 1e-12);
  return faceModelFromForward(
    (x, shape) => raw(x, shape[0]).map((v, i) => (v - mean[i % dim]) * inv[i % dim]),
    { name, inputSize: [3, 32, 32], dim, threshold: 0.5, preprocess: pre },
  );
}

/** RepMLPNet kwargs of the tiny Fashion-MNIST-shaped classifier (1×28×28 → 10). */
export const TINY_CLASSIFIER = {
  in_channels: 1,
  num_class: 10,
  patch_size: 4,
  num_blocks: [1],
  channels: [8],
  hs: [7],
  ws: [7],
  sharesets_nums: [2],
  reparam_conv_k: [3],
  globalperceptron_reduce: 4,
};

/** Fashion-MNIST-shaped classifier: RepMLPNet on 1×28×28, 10 classes. */
export function testClassifier(name = "tiny-fmnist", seed = 2): ClassifierModel {
  const desc = buildModel("RepMLPNet", TINY_CLASSIFIER);
  const sd = foldStateDict(desc, randomStateDict(desc, "train", seed));
  const labels = FASHION_MNIST_CLASSES;
  return classifierModelFromForward((x, shape) => forward(desc, sd, f32(shape, x), "deploy").data, {
    name,
    inputSize: [1, 28, 28],
    labels,
    preprocess: { mean: [0.2860], std: [0.3530] },
  });
}

/**
 * A synthetic "identity": a smooth random colour field from `id` (large-scale structure the
 * network can tell apart), plus a `variant` that adds small noise and a 1-pixel shift, standing in
 * for a second photo of the same person.
 */
export function identityImage(id: number, variant = 0, size = 96): Uint8Array {
  const r = rng(1000 + id * 7919);
  const blobs = Array.from({ length: 6 }, () => ({
    x: r() * size,
    y: r() * size,
    s: (0.15 + 0.3 * r()) * size,
    c: [r() * 255, r() * 255, r() * 255],
  }));
  const base = [r() * 255, r() * 255, r() * 255];
  // A per-identity stripe texture: orientation, frequency and phase.
  const th = r() * Math.PI, fq = (2 + 6 * r()) * 2 * Math.PI / size, ph = r() * 6.28, amp = 40 + 40 * r();
  const cs = Math.cos(th), sn = Math.sin(th);
  const nz = rng(5000 + id * 31 + variant * 131);
  const dx = variant ? 1 : 0;
  const out = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const px = [...base];
      for (const b of blobs) {
        const d2 = ((x + dx - b.x) ** 2 + (y - b.y) ** 2) / (b.s * b.s);
        const wgt = Math.exp(-d2);
        for (let c = 0; c < 3; c++) px[c] = px[c] * (1 - wgt) + b.c[c] * wgt;
      }
      const stripe = amp * Math.sin(fq * ((x + dx) * cs + y * sn) + ph);
      for (let c = 0; c < 3; c++) {
        px[c] += c === 1 ? stripe : -stripe / 2;
        const noise = variant ? (nz() - 0.5) * 12 : 0;
        out[(y * size + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(px[c] + noise)));
      }
    }
  }
  return out;
}

/** RGB → JPEG bytes (jpeg-js, the server's decoder). */
export function toJpeg(rgb: Uint8Array, w: number, h: number, quality = 92): Uint8Array {
  const rgba = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    rgba[i * 4] = rgb[i * 3];
    rgba[i * 4 + 1] = rgb[i * 3 + 1];
    rgba[i * 4 + 2] = rgb[i * 3 + 2];
    rgba[i * 4 + 3] = 255;
  }
  return new Uint8Array(jpeg.encode({ data: rgba, width: w, height: h }, quality).data);
}

/** Pixels → PNG bytes (fast-png); `channels` 1 (grey), 2, 3 (RGB) or 4 (RGBA). */
export function toPng(data: Uint8Array, w: number, h: number, channels = 3): Uint8Array {
  return encodePng({ width: w, height: h, data, channels, depth: 8 });
}

/** Insert an EXIF APP1 segment carrying only an Orientation tag right after the JPEG SOI. */
export function withExifOrientation(jpegBytes: Uint8Array, orientation: number): Uint8Array {
  // TIFF header (little endian) + IFD0 with one entry: tag 0x0112 SHORT count 1 value.
  const tiff = [
    0x49,
    0x49,
    0x2a,
    0x00,
    0x08,
    0x00,
    0x00,
    0x00, // II*\0, IFD at 8
    0x01,
    0x00, // 1 entry
    0x12,
    0x01,
    0x03,
    0x00,
    0x01,
    0x00,
    0x00,
    0x00,
    orientation,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00, // next IFD = 0
  ];
  const payload = [0x45, 0x78, 0x69, 0x66, 0x00, 0x00, ...tiff]; // "Exif\0\0"
  const len = payload.length + 2;
  const seg = [0xff, 0xe1, len >> 8, len & 0xff, ...payload];
  const out = new Uint8Array(jpegBytes.length + seg.length);
  out.set(jpegBytes.subarray(0, 2));
  out.set(seg, 2);
  out.set(jpegBytes.subarray(2), 2 + seg.length);
  return out;
}

function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** One PNG chunk: length, type, data, CRC. */
export function chunk(type: string, data: Uint8Array): Uint8Array {
  const td = new Uint8Array(4 + data.length);
  td.set(new TextEncoder().encode(type));
  td.set(data, 4);
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  out.set(td, 4);
  dv.setUint32(8 + data.length, crc32(td));
  return out;
}

/** A well-formed PNG whose IHDR claims `w × h` RGB pixels, with a tiny IDAT: a decompression bomb's header. */
export function pngBombHeader(w = 100_000, h = 100_000): Uint8Array {
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, w);
  dv.setUint32(4, h);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", new Uint8Array([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])),
    chunk("IEND", new Uint8Array()),
  ];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, o), o += p.length;
  return out;
}

/** A running server and its base URL. */
export interface TestServer {
  url: string;
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

/** Start `createApp(opts)` on 127.0.0.1, port 0. Logs are captured instead of printed. */
export function serve(opts: Partial<AppOptions> & Pick<AppOptions, "store">): TestServer {
  const logs: Record<string, unknown>[] = [];
  const app = createApp({
    faceModels: [testFaceModel()],
    classifiers: [testClassifier()],
    apiKeys: [KEY],
    log: (e) => logs.push(e as unknown as Record<string, unknown>),
    ...opts,
  });
  const ac = new AbortController();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} }, app.fetch);
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    logs,
    async close() {
      ac.abort();
      await server.finished;
    },
  };
}

/** The API key the test servers accept. */
export const KEY = "test-key-0123456789abcdef";

/** Authorization header for {@link KEY}. */
export const AUTH = { Authorization: `Bearer ${KEY}` };

/** multipart body with image fields and string fields. */
export function form(images: Record<string, Uint8Array>, fields: Record<string, string> = {}): FormData {
  const f = new FormData();
  for (const [k, v] of Object.entries(images)) {
    f.append(k, new Blob([v as BlobPart], { type: "image/jpeg" }), `${k}.jpg`);
  }
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  return f;
}

/** Fetch and parse JSON, returning status, headers and body. */
export async function call(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text);
  } catch {
    body = { _text: text };
  }
  return { status: res.status, headers: res.headers, body };
}

/** Tiny RepMLPNet descriptions used for on-disk bundles (face: 3×32×32 → 32; classifier: 1×28×28 → 10). */
export function tinyDescs() {
  const face = buildModel("RepMLPNet", {
    in_channels: 3,
    num_class: 32,
    patch_size: 4,
    num_blocks: [1, 1],
    channels: [16, 32],
    hs: [8, 4],
    ws: [8, 4],
    sharesets_nums: [2, 4],
    reparam_conv_k: [3],
    globalperceptron_reduce: 4,
  });
  const cls = buildModel("RepMLPNet", TINY_CLASSIFIER);
  return { face, cls };
}

/** Write a face and a classifier bundle plus `manifest.json` (the weights/ layout) into `dir`. */
export async function writeTinyWeights(
  dir: string,
  dtype: "fp32" | "fp16" | "int8" = "fp32",
): Promise<string> {
  const { face, cls } = tinyDescs();
  const fb = await bundleFromConversion(
    { desc: face, deploy: foldStateDict(face, randomStateDict(face, "train", 1)) },
    dtype,
    {
      preprocess: { input: [3, 32, 32], mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
      threshold: 0.4,
    },
  );
  const cb = await bundleFromConversion(
    { desc: cls, deploy: foldStateDict(cls, randomStateDict(cls, "train", 2)) },
    dtype,
    {
      preprocess: { input: [1, 28, 28], mean: [0.286], std: [0.353] },
      labels: FASHION_MNIST_CLASSES,
    },
  );
  await Deno.writeFile(`${dir}/tiny-face.bundle`, fb);
  await Deno.writeFile(`${dir}/tiny-fmnist.bundle`, cb);
  const manifest = {
    bundles: [
      {
        name: "tiny-face",
        task: "face",
        dtype,
        file: "tiny-face.bundle",
        input_shape: [3, 32, 32],
        metrics: {},
      },
      {
        name: "tiny-fmnist",
        task: "classifier",
        dtype,
        file: "tiny-fmnist.bundle",
        input_shape: [1, 28, 28],
        metrics: {},
      },
    ],
  };
  const path = `${dir}/manifest.json`;
  await Deno.writeTextFile(path, JSON.stringify(manifest, null, 2));
  return path;
}
