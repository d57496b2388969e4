/**
 * A small real-face check set, built at run time from photos that npm packages ship (no photo is
 * committed): faces are detected and aligned, matched to the identity labels in
 * `realfaces.json` (assigned by looking at the photos; see its `about`), written as aligned JPEG
 * crops `<out>/<identity>/<identity>_<nnnn>.jpg`, and paired:
 *   genuine  = two faces labelled the same person in two different photos (never two views of one
 *              photo);
 *   impostor = two faces in the same photo (necessarily different people), or two faces whose
 *              labelled sexes differ. Pairs whose status the labels cannot settle are left out.
 */
import jpeg from "jpeg-js";
import { CorruptFileError, InvalidArgumentError } from "../../runtime/src/errors.ts";
import { cropPixels, openImage, type Point } from "../../runtime/src/image/mod.ts";
import { findFaces } from "../eval/embed.ts";
import type { DetectedFace, FaceDetector } from "./faceapi_detect.ts";

/** One labelled face: a point inside its box (source pixels), identity, sex. */
export interface LabelledFace {
  at: Point;
  id: string;
  sex: "f" | "m";
}

/** A labelled photo of a package. */
export interface LabelledPhoto {
  file: string;
  /** Faces in this file that come from different photos (a grid of thumbnails): one group each. */
  thumbnails?: boolean;
  faces: LabelledFace[];
}

/** The committed label file. */
export interface RealFaceLabels {
  about: string;
  sources: { package: string; version: string; licence: string; photos: LabelledPhoto[] }[];
}

/** A written crop. */
export interface RealFace {
  id: string;
  sex: "f" | "m";
  /** Which photo it comes from (same photo ⇒ different people). */
  photo: string;
  /** Path relative to the output folder. */
  file: string;
  source: string;
  score: number;
}

/** Load the label file shipped beside this module. */
export async function loadLabels(
  path = new URL("./realfaces.json", import.meta.url),
): Promise<RealFaceLabels> {
  return JSON.parse(await Deno.readTextFile(path));
}

/** The detection whose box contains `at` (the most confident one when several do). */
export function matchFace(faces: DetectedFace[], at: Point): DetectedFace | null {
  let best: DetectedFace | null = null;
  for (const f of faces) {
    const inside = at[0] >= f.box.x && at[0] <= f.box.x + f.box.w && at[1] >= f.box.y &&
      at[1] <= f.box.y + f.box.h;
    if (inside && (!best || f.score > best.score)) best = f;
  }
  return best;
}

/** Encode planar uint8 RGB (3·h·w) as JPEG. */
export function encodeJpeg(px: Uint8Array, w: number, h: number, quality = 95): Uint8Array {
  const n = w * h, rgba = new Uint8Array(n * 4);
  if (px.length !== 3 * n) throw new InvalidArgumentError(`encodeJpeg: ${px.length} values for 3×${h}×${w}`);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) rgba[i * 4 + c] = px[c * n + i];
    rgba[i * 4 + 3] = 255;
  }
  return jpeg.encode({ data: rgba, width: w, height: h }, quality).data;
}

/** Genuine and impostor pairs over the crops, by the rules in the module comment. */
export function realFacePairs(faces: RealFace[]): { a: string; b: string; same: boolean }[] {
  const out: { a: string; b: string; same: boolean }[] = [];
  for (let i = 0; i < faces.length; i++) {
    for (let j = i + 1; j < faces.length; j++) {
      const x = faces[i], y = faces[j];
      if (x.id === y.id) {
        if (x.photo === y.photo) {
          throw new InvalidArgumentError(`labels put ${x.id} twice in one photo (${x.photo})`);
        }
        out.push({ a: x.file, b: y.file, same: true });
      } else if (x.photo === y.photo || x.sex !== y.sex) {
        out.push({ a: x.file, b: y.file, same: false });
      }
    }
  }
  return out;
}

/**
 * Detect, align (at `size`², on `template` — a model's own, as fractions of the crop — or ArcFace's
 * 5-point template), label and write every labelled face.
 * `resolve(pkg, file)` gives the path of a package file. A label without a detection is an error
 * (the labels and the detector disagree), so the set never silently shrinks.
 */
export async function buildRealFaces(
  labels: RealFaceLabels,
  detector: FaceDetector,
  outDir: string,
  resolve: (pkg: string, file: string) => string,
  size = 150,
  template?: readonly Point[],
): Promise<{ faces: RealFace[]; pairs: { a: string; b: string; same: boolean }[] }> {
  const faces: RealFace[] = [];
  const counts = new Map<string, number>();
  for (const pkg of labels.sources) {
    for (const photo of pkg.photos) {
      const path = resolve(pkg.package, photo.file);
      let src;
      try {
        src = await openImage(await Deno.readFile(path));
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) {
          throw new InvalidArgumentError(
            `${path} not found`,
            `install ${pkg.package}@${pkg.version} (deno install in the repo)`,
          );
        }
        throw new CorruptFileError(`${path}: ${(e as Error).message}`);
      }
      const found = await findFaces(src, detector);
      for (const [k, lf] of photo.faces.entries()) {
        const d = matchFace(found, lf.at);
        if (!d) {
          throw new InvalidArgumentError(
            `${pkg.package}/${photo.file}: no detected face contains the labelled point (${lf.at})`,
          );
        }
        const n = (counts.get(lf.id) ?? 0) + 1;
        counts.set(lf.id, n);
        const file = `${lf.id}/${lf.id}_${String(n).padStart(4, "0")}.jpg`;
        await Deno.mkdir(`${outDir}/${lf.id}`, { recursive: true });
        const px = await cropPixels(src, { input: [3, size, size], landmarks: d.landmarks, template });
        await Deno.writeFile(`${outDir}/${file}`, encodeJpeg(px, size, size));
        const photoKey = `${pkg.package}/${photo.file}${photo.thumbnails ? `#${k}` : ""}`;
        faces.push({
          id: lf.id,
          sex: lf.sex,
          photo: photoKey,
          file,
          source: `${pkg.package}@${pkg.version}`,
          score: d.score,
        });
      }
    }
  }
  return { faces, pairs: realFacePairs(faces) };
}

/** CSV text of a pair list (`path_a,path_b,same`). */
export function pairsCsv(pairs: { a: string; b: string; same: boolean }[]): string {
  return "path_a,path_b,same\n" + pairs.map((p) => `${p.a},${p.b},${p.same ? 1 : 0}`).join("\n") + "\n";
}
