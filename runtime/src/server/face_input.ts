/**
 * The face(s) of a request image: the client's landmarks when it sent them (no detection), else the
 * detector's — the largest face, the one at an index, or the N largest (enrolment of a group photo).
 * Each answer says which face it used, so clients can check the box.
 */
import { type Face, type FaceDetector, findFaces, type ScaledSource } from "../face/detect.ts";
import type { Point } from "../face/landmarks.ts";
import { type FaceJson, faceJson, pickFace, pickFaces } from "../face/select.ts";
import { decodeImage, type RgbImage } from "./image.ts";

/** How a request chooses its face. */
export interface FaceChoice {
  /** Client landmarks (upright image pixels): skip detection. */
  landmarks?: Point[];
  /** Detected face to use (0 = largest, the default). */
  index?: number;
  /** Use the `maxFaces` largest faces instead of one (enrolment). */
  maxFaces?: number;
  /** Smallest face (px) to look for when more than the largest face matters. Default 40. */
  minFace?: number;
}

/** A detected face as responses show it: its index in `/v1/faces/detect`'s order and where it is. */
export type UsedFace = FaceJson & { index: number };

/** One face to embed: the landmarks to align with, and the detected face (null: client landmarks). */
export interface LocatedFace {
  landmarks: Point[];
  face: UsedFace | null;
}

/** A decoded image as the detector's source (scales by area averaging until the image pipeline lands). */
export function rgbSource(img: RgbImage): ScaledSource {
  return {
    width: img.width,
    height: img.height,
    decode: ({ scale }) => Promise.resolve({ scale, pixels: scale === 1 ? img : shrink(img, 1 / scale) }),
  };
}

function shrink(img: RgbImage, f: number): RgbImage {
  const w = Math.max(1, Math.floor(img.width / f)), h = Math.max(1, Math.floor(img.height / f));
  const out = new Uint8Array(w * h * 3), n = f * f;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let r = 0, g = 0, b = 0;
      for (let yy = y * f; yy < (y + 1) * f; yy++) {
        for (let xx = x * f; xx < (x + 1) * f; xx++) {
          const p = (yy * img.width + xx) * 3;
          r += img.data[p], g += img.data[p + 1], b += img.data[p + 2];
        }
      }
      const o = (y * w + x) * 3;
      out[o] = r / n, out[o + 1] = g / n, out[o + 2] = b / n;
    }
  }
  return { width: w, height: h, data: out };
}

/** Decode and choose the face(s) of one image; `no_face` (422) when detection finds none there. */
export async function locateFaces(
  bytes: Uint8Array,
  choice: FaceChoice,
  detector: FaceDetector | undefined,
  maxPixels: number,
): Promise<{ image: RgbImage; faces: LocatedFace[] }> {
  const image = decodeImage(bytes, maxPixels);
  if (choice.landmarks) return { image, faces: [{ landmarks: choice.landmarks, face: null }] };
  if (!detector) throw new Error("locateFaces without landmarks needs a detector");
  const many = (choice.maxFaces ?? 1) > 1, index = choice.index ?? 0;
  const r = await findFaces(detector, rgbSource(image), { all: many || index > 0, minFace: choice.minFace });
  const chosen: [Face, number][] = many
    ? pickFaces(r.faces, choice.maxFaces!).map((f, i) => [f, i])
    : [[pickFace(r.faces, index), index]];
  const faces: LocatedFace[] = [];
  for (const [f, i] of chosen) {
    const refined = await detector.refine(image, f);
    faces.push({
      landmarks: refined.landmarks,
      face: { index: i, ...faceJson({ ...refined, box: f.box, score: f.score }) },
    });
  }
  return { image, faces };
}
