/**
 * Folder-per-class (or folder-per-identity) image datasets, JPEG or PNG:
 *   PATH/train/<class>/*.{png,jpg,jpeg} and optionally PATH/test/<class>/…   (explicit split), or
 *   PATH/<class>/…                                                          (split made here)
 * Without an explicit split, classification keeps every 10th image of each class for testing and
 * identity (embedding) datasets hold out the last 20 % of identities. Images go through the one image
 * pipeline of serving (`runtime/src/image`: EXIF, centre crop to the target aspect, antialiased resize)
 * to the upright size of the first one; grey images are used as 1 channel unless any image is colour,
 * then everything is RGB.
 */
import { CorruptFileError, ImageError, InvalidArgumentError } from "../../runtime/src/errors.ts";
import { type ImageInfo, imageToPixels, probeImage } from "../../runtime/src/image/mod.ts";
import type { ImageSet } from "./fashion_mnist.ts";

const EXT = /\.(png|jpe?g)$/i;

/** Image errors named after the file, as the CLI reports them. */
function fileError(e: unknown, name: string): unknown {
  if (!(e instanceof ImageError)) return e;
  return new CorruptFileError(`${name}: ${e.message}`, {
    hint: "remove or re-encode the file (PNG or JPEG)",
    cause: e,
  });
}

/** Header facts of an image file (typed CorruptFileError naming the file on failure). */
export function probeFile(bytes: Uint8Array, name = "image"): ImageInfo {
  try {
    return probeImage(bytes);
  } catch (e) {
    throw fileError(e, name);
  }
}

/**
 * One image file → uint8 planar C·H·W pixels through the shared pipeline (the same call serving makes
 * before normalising), typed CorruptFileError naming the file on failure.
 */
export async function loadImage(
  bytes: Uint8Array,
  name: string,
  input: [number, number, number],
): Promise<Uint8Array> {
  try {
    return await imageToPixels(bytes, { input });
  } catch (e) {
    throw fileError(e, name);
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
  const infos: ImageInfo[] = [];
  for (const f of files) infos.push(probeFile(await Deno.readFile(f.path), f.path));
  const c: 1 | 3 = shape?.c ?? (infos.some((d) => d.channels === 3) ? 3 : 1);
  const h = shape?.h ?? infos[0].height, w = shape?.w ?? infos[0].width;
  const plane = c * h * w;
  const images = new Uint8Array(files.length * plane);
  for (const [i, f] of files.entries()) {
    images.set(await loadImage(await Deno.readFile(f.path), f.path, [c, h, w]), i * plane);
  }
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
