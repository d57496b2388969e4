/**
 * The face(s) of a request image: the client's landmarks when it sent them (no detection), else the
 * detector's — the largest face, the one at an index, or the N largest (enrolment of a group photo).
 * Detection runs on a DCT-scaled decode (runtime/src/image); each chosen face is refined on a decode
 * of its own region, and the crop is then decoded at the resolution the model needs. Each answer says
 * which face it used, so clients can check the box.
 */
import { type Face, type FaceDetector, findFaces } from "../face/detect.ts";
import { type FaceJson, faceJson, pickFace, pickFaces } from "./face_select.ts";
import { type ImageSource, openImage, type Point } from "../image/mod.ts";

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

/** Window side / face side of the refinement pass (as FaceDetector.refine). */
const REFINE_CONTEXT = 3;

const mapFace = (f: Face, m: (p: Point) => Point): Face => {
  const [x0, y0] = m([f.box.x, f.box.y]), [x1, y1] = m([f.box.x + f.box.width, f.box.y + f.box.height]);
  return {
    ...f,
    box: { x: x0, y: y0, width: x1 - x0, height: y1 - y0 },
    landmarks: f.landmarks.map(m),
    keypoints: f.keypoints.map(m),
  };
};

/**
 * Re-detect `face` (full-resolution pixels) on a decode of the region around it, at a scale that
 * gives the refinement window about its 256 model pixels.
 */
export async function refineInSource(det: FaceDetector, src: ImageSource, face: Face): Promise<Face> {
  const side = REFINE_CONTEXT * Math.max(face.box.width, face.box.height);
  const cx = face.box.x + face.box.width / 2, cy = face.box.y + face.box.height / 2;
  const reg = await src.decodeRegion(
    { x: cx - side / 2, y: cy - side / 2, w: side, h: side },
    { targetShortSide: Math.min(det.config.inputSize, side) },
  );
  const s = reg.scale;
  const local = mapFace(face, ([x, y]) => [x * s - reg.x, y * s - reg.y]);
  const refined = await det.refine(reg.pixels, local);
  return mapFace(refined, ([x, y]) => [(x + reg.x) / s, (y + reg.y) / s]);
}

/** Open the image and choose its face(s); `no_face` (422) when detection finds none there. */
export async function locateFaces(
  bytes: Uint8Array,
  choice: FaceChoice,
  detector: FaceDetector,
  maxPixels: number,
): Promise<{ src: ImageSource; faces: LocatedFace[] }> {
  const src = await openImage(bytes, { maxPixels });
  if (choice.landmarks) return { src, faces: [{ landmarks: choice.landmarks, face: null }] };
  const many = (choice.maxFaces ?? 1) > 1, index = choice.index ?? 0;
  // Without an index the whole-image windows usually suffice (the largest face); an explicit index
  // means /v1/faces/detect's list, so it runs the same search.
  const all = many || choice.index !== undefined;
  const r = await findFaces(detector, src, { all, minFace: choice.minFace });
  const chosen: [Face, number][] = many
    ? pickFaces(r.faces, choice.maxFaces!).map((f, i) => [f, i])
    : [[pickFace(r.faces, index), index]];
  const faces: LocatedFace[] = [];
  for (const [f, i] of chosen) {
    const refined = await refineInSource(detector, src, f);
    // The box and score stay the detection's (as /v1/faces/detect shows it); the landmarks are refined.
    faces.push({
      landmarks: refined.landmarks,
      face: { index: i, ...faceJson({ ...f, landmarks: refined.landmarks }) },
    });
  }
  return { src, faces };
}
