/**
 * Folder-per-class (or folder-per-identity) image datasets, JPEG or PNG:
 *   PATH/train/<class>/*.{png,jpg,jpeg} and optionally PATH/test/<class>/…   (explicit split), or
 *   PATH/<class>/…                                                          (split made here)
 * Without an explicit split, classification keeps every 10th image of each class for testing and
 * identity (embedding) datasets hold out the last 20 % of identities. All images are resized
 * (bilinear) to the size of the first one; grey images are used as 1 channel unless any image is
 * colour, then everything is RGB.
 */
import jpeg from "jpeg-js";
import { decode as decodePng } from "fast-png";
import { CorruptFileError, InvalidArgumentError } from "../../runtime/src/errors.ts";
import type { ImageSet } from "./fashion_mnist.ts";

/** A decoded image, interleaved HWC uint8 with 1 or 3 channels. */
export interface Decoded {
  w: number;
  h: number;
  c: 1 | 3;
  data: Uint8Array;
}

const EXT = /\.(png|jpe?g)$/i;

/** Decode PNG or JPEG bytes (typed CorruptFileError naming the file on failure). */
export function decodeImage(bytes: Uint8Array, name = "image"): Decoded {
  const isPng = bytes.length > 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e &&
    bytes[3] === 0x47;
  const isJpg = bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8;
  try {
    if (isPng) {
      const p = decodePng(bytes);
      const ch = p.channels;
      const src = p.data;
      const max = p.depth === 16 ? 257 : 1;
      const n = p.width * p.height;
      const grey = ch <= 2;
      const out = new Uint8Array(n * (grey ? 1 : 3));
      for (let i = 0; i < n; i++) {
        if (grey) out[i] = Math.round(Number(src[i * ch]) / max);
        else for (let k = 0; k < 3; k++) out[i * 3 + k] = Math.round(Number(src[i * ch + k]) / max);
      }
      return { w: p.width, h: p.height, c: grey ? 1 : 3, data: out };
    }
    if (isJpg) {
      const j = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 256 });
      const n = j.width * j.height;
      const out = new Uint8Array(n * 3);
      let grey = true;
      for (let i = 0; i < n; i++) {
        const r = j.data[i * 4], g = j.data[i * 4 + 1], b = j.data[i * 4 + 2];
        out[i * 3] = r, out[i * 3 + 1] = g, out[i * 3 + 2] = b;
        if (r !== g || g !== b) grey = false;
      }
      if (grey) {
        const o1 = new Uint8Array(n);
        for (let i = 0; i < n; i++) o1[i] = out[i * 3];
        return { w: j.width, h: j.height, c: 1, data: o1 };
      }
      return { w: j.width, h: j.height, c: 3, data: out };
    }
  } catch (e) {
    throw new CorruptFileError(`${name}: cannot decode image (${(e as Error).message})`, {
      hint: "remove or re-encode the file (PNG or baseline JPEG)",
    });
  }
  throw new CorruptFileError(`${name}: not a PNG or JPEG file`, {
    hint: "only .png/.jpg/.jpeg images are read",
  });
}

/** Bilinear resize + channel conversion to planar CHW uint8. */
export function toCHW(img: Decoded, C: 1 | 3, H: number, W: number, out: Uint8Array, off: number): void {
  const sy = img.h / H, sx = img.w / W;
  for (let y = 0; y < H; y++) {
    const fy = Math.max(0, (y + 0.5) * sy - 0.5), y0 = Math.min(img.h - 1, Math.floor(fy));
    const y1 = Math.min(img.h - 1, y0 + 1), wy = fy - y0;
    for (let x = 0; x < W; x++) {
      const fx = Math.max(0, (x + 0.5) * sx - 0.5), x0 = Math.min(img.w - 1, Math.floor(fx));
      const x1 = Math.min(img.w - 1, x0 + 1), wx = fx - x0;
      for (let c = 0; c < C; c++) {
        const get = (yy: number, xx: number) => {
          const p = yy * img.w + xx;
          if (img.c === C) return img.data[p * C + c];
          if (img.c === 1) return img.data[p]; // grey → RGB
          return 0.299 * img.data[p * 3] + 0.587 * img.data[p * 3 + 1] + 0.114 * img.data[p * 3 + 2];
        };
        const v = (1 - wy) * ((1 - wx) * get(y0, x0) + wx * get(y0, x1)) +
          wy * ((1 - wx) * get(y1, x0) + wx * get(y1, x1));
        out[off + (c * H + y) * W + x] = Math.round(v);
      }
    }
  }
}

async function listDirs(path: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(path)) if (e.isDirectory && !e.name.startsWith(".")) out.push(e.name);
  return out.sort();
}

async function listImages(path: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(path)) if (e.isFile && EXT.test(e.name)) out.push(e.name);
  return out.sort();
}

async function exists(p: string): Promise<boolean> {
  try {
    return (await Deno.stat(p)).isDirectory;
  } catch {
    return false;
  }
}

/** Decode a list of (file, label) into one uint8 set at a common size. */
async function build(
  files: { path: string; label: number }[],
  classes: string[],
  shape: { c: 1 | 3; h: number; w: number } | null,
): Promise<ImageSet> {
  const decoded: Decoded[] = [];
  for (const f of files) decoded.push(decodeImage(await Deno.readFile(f.path), f.path));
  const c: 1 | 3 = shape?.c ?? (decoded.some((d) => d.c === 3) ? 3 : 1);
  const h = shape?.h ?? decoded[0].h, w = shape?.w ?? decoded[0].w;
  const plane = c * h * w;
  const images = new Uint8Array(files.length * plane);
  decoded.forEach((d, i) => toCHW(d, c, h, w, images, i * plane));
  return { images, labels: Int32Array.from(files.map((f) => f.label)), n: files.length, c, h, w, classes };
}

/**
 * Load a folder dataset. `task` decides the automatic split: "classify" → every 10th image per
 * class is test; "embed" → the last 20 % of identities (at least 2) are held out.
 */
export async function loadFolderDataset(
  root: string,
  task: "classify" | "embed" = "classify",
): Promise<{ train: ImageSet; test: ImageSet | null }> {
  if (!(await exists(root))) {
    throw new InvalidArgumentError(`dataset folder '${root}' does not exist`, "pass --dataset folder:PATH");
  }
  const explicit = await exists(`${root}/train`);
  const base = explicit ? `${root}/train` : root;
  const classes = await listDirs(base);
  if (classes.length < 2) {
    throw new InvalidArgumentError(
      `dataset folder '${base}' needs at least two class/identity sub-folders, found ${classes.length}`,
      "layout: PATH/<class>/*.png (or PATH/train/<class>/… and PATH/test/<class>/…)",
    );
  }
  const per = new Map<string, string[]>();
  for (const c of classes) per.set(c, (await listImages(`${base}/${c}`)).map((f) => `${base}/${c}/${f}`));
  const empty = classes.filter((c) => per.get(c)!.length === 0);
  if (empty.length) {
    throw new InvalidArgumentError(`no .png/.jpg images in: ${empty.slice(0, 5).join(", ")}`);
  }
  const trainFiles: { path: string; label: number }[] = [], testFiles: { path: string; label: number }[] = [];
  let trainClasses = classes, testClasses = classes;
  if (explicit) {
    classes.forEach((c, i) => per.get(c)!.forEach((path) => trainFiles.push({ path, label: i })));
    if (await exists(`${root}/test`)) {
      const tcls = await listDirs(`${root}/test`);
      if (task === "classify") {
        const unknown = tcls.filter((c) => !classes.includes(c));
        if (unknown.length) {
          throw new InvalidArgumentError(`test classes not in train: ${unknown.join(", ")}`);
        }
        for (const c of tcls) {
          for (const f of await listImages(`${root}/test/${c}`)) {
            testFiles.push({ path: `${root}/test/${c}/${f}`, label: classes.indexOf(c) });
          }
        }
      } else {
        testClasses = tcls;
        for (const [i, c] of tcls.entries()) {
          for (const f of await listImages(`${root}/test/${c}`)) {
            testFiles.push({ path: `${root}/test/${c}/${f}`, label: i });
          }
        }
      }
    }
  } else if (task === "classify") {
    classes.forEach((c, i) =>
      per.get(c)!.forEach((path, k) => (k % 10 === 9 ? testFiles : trainFiles).push({ path, label: i }))
    );
  } else {
    const nTest = Math.max(2, Math.round(classes.length * 0.2));
    if (classes.length - nTest < 2) {
      throw new InvalidArgumentError("need at least 4 identities to hold some out");
    }
    trainClasses = classes.slice(0, classes.length - nTest);
    testClasses = classes.slice(classes.length - nTest);
    trainClasses.forEach((c, i) => per.get(c)!.forEach((path) => trainFiles.push({ path, label: i })));
    testClasses.forEach((c, i) => per.get(c)!.forEach((path) => testFiles.push({ path, label: i })));
  }
  const train = await build(trainFiles, trainClasses, null);
  const test = testFiles.length
    ? await build(testFiles, testClasses, { c: train.c as 1 | 3, h: train.h, w: train.w })
    : null;
  return { train, test };
}
