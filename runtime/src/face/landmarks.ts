/**
 * Five alignment points from BlazeFace's six keypoints. BlazeFace gives both eyes, the nose tip and
 * the mouth centre (plus the ears), not the mouth corners the ArcFace template uses: the corners are
 * placed on either side of the mouth centre, parallel to the eye line, at the template's ratio of
 * mouth width to eye distance (29.18 / 35.24 px in the 112 px template). The similarity fit then
 * sees the same eye line, nose and mouth position as with measured corners; only the mouth width is
 * assumed (docs/api.md gives the resulting embedding stability).
 */

/** A point in image pixels (x right, y down). */
export type Point = [number, number];

/** Mouth width / eye distance in the ArcFace 112×112 template. */
export const MOUTH_TO_EYE_RATIO = (70.7299 - 41.5493) / (73.5318 - 38.2946);

/**
 * BlazeFace keypoints (subject's right eye, left eye, nose tip, mouth centre, …) → the template's
 * order: eye on the image's left, eye on the image's right, nose tip, mouth corner left, right.
 */
export function fiveLandmarks(kp: readonly Point[]): Point[] {
  if (kp.length < 4) throw new RangeError("need at least 4 keypoints (eyes, nose, mouth)");
  let [a, b] = [kp[0], kp[1]];
  if (a[0] > b[0]) [a, b] = [b, a]; // image-left eye first, whatever the detector called it
  const h = MOUTH_TO_EYE_RATIO / 2, m = kp[3];
  const dx = (b[0] - a[0]) * h, dy = (b[1] - a[1]) * h;
  return [[a[0], a[1]], [b[0], b[1]], [kp[2][0], kp[2][1]], [m[0] - dx, m[1] - dy], [m[0] + dx, m[1] + dy]];
}
