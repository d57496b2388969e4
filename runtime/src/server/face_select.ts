/**
 * Which detected face a request uses, and how a face is shown in API responses. Faces come largest
 * box first (FaceDetector.detect), so index 0 is the default and an index means the same face in
 * `/v1/faces/detect` and in the endpoints that detect when no landmarks are sent.
 */
import { ApiError } from "./api_errors.ts";
import type { Face } from "../face/detect.ts";
import type { Point } from "../face/landmarks.ts";

/** A face as the API returns it (upright-image pixels, 0.1 px). */
export interface FaceJson {
  box: { x: number; y: number; width: number; height: number };
  /** Eye (image left), eye (image right), nose tip, mouth corner left, mouth corner right. */
  landmarks: Point[];
  score: number;
}

const r1 = (v: number) => Math.round(v * 10) / 10;

/** API form of a detected face. */
export function faceJson(f: Face): FaceJson {
  return {
    box: { x: r1(f.box.x), y: r1(f.box.y), width: r1(f.box.width), height: r1(f.box.height) },
    landmarks: f.landmarks.map(([x, y]) => [r1(x), r1(y)] as Point),
    score: Math.round(f.score * 1000) / 1000,
  };
}

/** The face at `index` (default 0, the largest); `no_face` when there is none there. */
export function pickFace(faces: readonly Face[], index = 0, what = "image"): Face {
  if (!faces.length) {
    throw new ApiError("no_face", `no face found in the ${what}; send landmarks to skip detection`);
  }
  if (index >= faces.length) {
    throw new ApiError(
      "no_face",
      `face index ${index} asked for, but the ${what} has ${faces.length} face(s) (0-based, largest first)`,
    );
  }
  return faces[index];
}

/** The `max` largest faces (at least one, else `no_face`). */
export function pickFaces(faces: readonly Face[], max: number, what = "image"): Face[] {
  pickFace(faces, 0, what);
  return faces.slice(0, max);
}
