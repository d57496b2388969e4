/**
 * Real group photographs for detector tests: `@vladmandic/face-api@1.7.15`'s `demo/sample1-6.jpg`
 * (a tools-only npm dependency; the photos are read from the package, never committed), and the
 * reference face boxes a second, independent detector (face-api's SSD MobileNet v1) found in them.
 */

/** Names of the six sample photos shipped in the face-api package. */
export const SAMPLE_PHOTOS = [1, 2, 3, 4, 5, 6].map((i) => `sample${i}.jpg`);

/** Bytes of one face-api demo photo, read from the installed npm package. */
export async function readSamplePhoto(name: string): Promise<Uint8Array> {
  return await Deno.readFile(new URL(import.meta.resolve(`@vladmandic/face-api/demo/${name}`)));
}

/** A face box in upright-image pixels. */
export interface RefBox {
  x: number;
  y: number;
  width: number;
  height: number;
  score: number;
}

/** The committed reference set (see `tools/cli/face_reference.ts`, which wrote it). */
export interface RefSet {
  provenance: string;
  photos: Record<string, { width: number; height: number; faces: RefBox[] }>;
}

/** Load `tools/tests/fixtures/face_api_ssd_boxes.json`. */
export async function loadReferenceBoxes(): Promise<RefSet> {
  const url = new URL("../tests/fixtures/face_api_ssd_boxes.json", import.meta.url);
  return JSON.parse(await Deno.readTextFile(url)) as RefSet;
}
