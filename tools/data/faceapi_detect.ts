/**
 * Interim face detector for the tools: face-api's SSD MobileNet v1 + 68-point landmark net on
 * tfjs (the kit's own BlazeFace detector is being built in runtime/src/face/). Only tools import
 * this (face-api is a test/tools dependency), and only through {@link FaceDetector}, so switching
 * to the kit's detector touches one function.
 */
import * as tf from "@tensorflow/tfjs";
import type { Planar, Point } from "../../runtime/src/image/mod.ts";
import { InvalidArgumentError } from "../../runtime/src/errors.ts";

/** One detected face in source-image pixels. */
export interface DetectedFace {
  score: number;
  box: { x: number; y: number; w: number; h: number };
  /** Eye (image left), eye (image right), nose tip, mouth corner left, mouth corner right. */
  landmarks: Point[];
}

/** Finds faces in a planar RGB image (values 0..255). */
export type FaceDetector = (img: Planar) => Promise<DetectedFace[]>;

const mean = (pts: { x: number; y: number }[], from: number, to: number): Point => {
  let x = 0, y = 0;
  for (let i = from; i <= to; i++) x += pts[i].x, y += pts[i].y;
  const n = to - from + 1;
  return [x / n, y / n];
};

/** 68-point iBUG landmarks → the 5 points of the alignment template. */
export function fivePoints(pts: { x: number; y: number }[]): Point[] {
  if (pts.length !== 68) throw new InvalidArgumentError(`expected 68 landmarks, got ${pts.length}`);
  return [mean(pts, 36, 41), mean(pts, 42, 47), [pts[30].x, pts[30].y], [pts[48].x, pts[48].y], [
    pts[54].x,
    pts[54].y,
  ]];
}

/** The face-api package folder inside node_modules (models and demo photos live there). */
export function faceApiDir(): string {
  return new URL("../../node_modules/@vladmandic/face-api/", import.meta.url).pathname;
}

/**
 * Load face-api's SSD + 68-landmark nets from the installed package and return a detector.
 * tfjs must already have a backend (see tools/train/tfjs_backend.ts).
 */
export async function faceApiDetector(minScore = 0.5): Promise<FaceDetector> {
  const faceapi = await import("@vladmandic/face-api/dist/face-api.node-wasm.js");
  const dir = `${faceApiDir()}model/`;
  // face-api is typed against its own copy of the tfjs types: go through unknown.
  const load = async (net: unknown, name: string) => {
    const manifest = JSON.parse(await Deno.readTextFile(`${dir}${name}-weights_manifest.json`));
    const bin = await Deno.readFile(`${dir}${manifest[0].paths[0]}`);
    const weights = manifest.flatMap((g: { weights: tf.io.WeightsManifestEntry[] }) => g.weights);
    (net as { loadFromWeightMap(m: tf.NamedTensorMap): void }).loadFromWeightMap(
      tf.io.decodeWeights(bin.buffer, weights),
    );
  };
  await load(faceapi.nets.ssdMobilenetv1, "ssd_mobilenetv1_model");
  await load(faceapi.nets.faceLandmark68Net, "face_landmark_68_model");
  const opts = new faceapi.SsdMobilenetv1Options({ minConfidence: minScore, maxResults: 100 });
  return async (img: Planar) => {
    if (img.c !== 3) throw new InvalidArgumentError("the face detector needs an RGB image");
    const t = tf.tidy(() =>
      tf.transpose(tf.tensor3d(img.data, [3, img.h, img.w]), [1, 2, 0]).round().asType("int32")
    ) as tf.Tensor3D;
    try {
      const input = t as unknown as Parameters<typeof faceapi.detectAllFaces>[0]; // face-api's own tfjs types
      const res = await faceapi.detectAllFaces(input, opts).withFaceLandmarks();
      return res.map((r: {
        detection: { score: number; box: { x: number; y: number; width: number; height: number } };
        landmarks: { positions: { x: number; y: number }[] };
      }) => ({
        score: r.detection.score,
        box: {
          x: r.detection.box.x,
          y: r.detection.box.y,
          w: r.detection.box.width,
          h: r.detection.box.height,
        },
        landmarks: fivePoints(r.landmarks.positions),
      }));
    } finally {
      t.dispose();
    }
  };
}
