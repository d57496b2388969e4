/**
 * The kit's own face detector (runtime/src/face: BlazeFace, the serve default from
 * weights/manifest.json) as a {@link FaceFinder} for eval and distillation, run exactly as the
 * server runs it: findFaces on a DCT-scaled decode (every face ≥ `minFace`), then each face refined
 * on a decode of its own region (face_input.ts). So eval scores and distillation crops use the
 * landmarks a served request gets. face-api's detector (tools/data/faceapi_detect.ts) stays the
 * independent reference: the tests' reference boxes and the labelled check set (data:realfaces).
 */
import { FaceDetector, findFaces } from "../../runtime/src/face/detect.ts";
import { refineInSource } from "../../runtime/src/server/face_input.ts";
import { chooseDetector, readManifest } from "../../runtime/src/server/manifest.ts";
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import type { FaceFinder } from "./embed.ts";

/** Options of {@link kitFaceFinder}. */
export interface KitFinderOptions {
  /** Detector ONNX; default: the manifest's default detector. */
  detectorPath?: string;
  /** Manifest to take the default from (default weights/manifest.json). */
  manifestPath?: string;
  /** Smallest face (px) to look for. Default 40 (the server's). */
  minFace?: number;
}

/** Load the kit's detector (ORT wasm, 1 thread) and return a finder plus its `dispose`. */
export async function kitFaceFinder(
  o: KitFinderOptions = {},
): Promise<{ find: FaceFinder; dispose: () => Promise<void> }> {
  const manifestPath = o.manifestPath ?? new URL("../../weights/manifest.json", import.meta.url).pathname;
  const path = o.detectorPath ?? chooseDetector(await readManifest(manifestPath), manifestPath)?.path;
  if (!path) throw new InvalidArgumentError(`no face detector listed in ${manifestPath}`);
  const det = await FaceDetector.create(await Deno.readFile(path), { backend: "wasm", threads: 1 });
  const find: FaceFinder = async (src) => {
    const { faces } = await findFaces(det, src, { all: true, minFace: o.minFace });
    const out = [];
    for (const f of faces) {
      // The box and score are the detection's; the landmarks the refined ones (as the server answers).
      const refined = await refineInSource(det, src, f);
      out.push({
        score: f.score,
        box: { x: f.box.x, y: f.box.y, w: f.box.width, h: f.box.height },
        landmarks: refined.landmarks,
      });
    }
    return out;
  };
  return { find, dispose: () => det.dispose() };
}
