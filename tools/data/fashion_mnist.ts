/**
 * Fashion-MNIST reader for Debian's `dataset-fashion-mnist` (gzip'd IDX files under
 * /usr/share/datasets/fashion-mnist) or any folder holding the four standard files (.gz or raw).
 */
import { gunzipSync } from "fflate";
import { CorruptFileError, InvalidArgumentError } from "../../runtime/src/errors.ts";

/** Default location of Debian's package. */
export const FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

/** Class names in label order. */
export const FASHION_MNIST_CLASSES = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

/** A uint8 image set: `images` is (N, C, H, W) row-major, `labels` (N). */
export interface ImageSet {
  images: Uint8Array;
  labels: Int32Array;
  n: number;
  c: number;
  h: number;
  w: number;
  classes: string[];
}

function be32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/** Parse an IDX file (optionally gzip'd): magic 0x0000_08_<ndim>, big-endian dims, uint8 payload. */
export function parseIdx(bytes: Uint8Array, what = "IDX file"): { dims: number[]; data: Uint8Array } {
  let b = bytes;
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) {
    try {
      b = gunzipSync(b);
    } catch (e) {
      throw new CorruptFileError(`${what}: broken gzip stream (${(e as Error).message})`);
    }
  }
  if (b.length < 4 || b[0] !== 0 || b[1] !== 0 || b[2] !== 0x08) {
    throw new CorruptFileError(`${what}: not a uint8 IDX file (bad magic)`);
  }
  const nd = b[3];
  if (nd < 1 || nd > 4 || b.length < 4 + 4 * nd) throw new CorruptFileError(`${what}: bad IDX header`);
  const dims: number[] = [];
  for (let i = 0; i < nd; i++) dims.push(be32(b, 4 + 4 * i));
  const n = dims.reduce((a, d) => a * d, 1);
  const off = 4 + 4 * nd;
  if (b.length !== off + n) {
    throw new CorruptFileError(`${what}: expected ${n} payload bytes, found ${b.length - off} (truncated?)`);
  }
  return { dims, data: b.subarray(off) };
}

async function readOne(dir: string, base: string): Promise<Uint8Array> {
  for (const name of [`${base}.gz`, base]) {
    try {
      return await Deno.readFile(`${dir}/${name}`);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  throw new InvalidArgumentError(
    `Fashion-MNIST file '${base}(.gz)' not found in ${dir}`,
    "install it with `apt-get install -y dataset-fashion-mnist` or pass --data-dir with the four IDX files",
  );
}

/** Load the train (60k) or test (10k) split as uint8 (N, 1, 28, 28). */
export async function loadFashionMnist(split: "train" | "test", dir = FASHION_MNIST_DIR): Promise<ImageSet> {
  const p = split === "train" ? "train" : "t10k";
  const img = parseIdx(await readOne(dir, `${p}-images-idx3-ubyte`), `${p}-images`);
  const lab = parseIdx(await readOne(dir, `${p}-labels-idx1-ubyte`), `${p}-labels`);
  if (img.dims.length !== 3 || lab.dims.length !== 1 || img.dims[0] !== lab.dims[0]) {
    throw new CorruptFileError(`Fashion-MNIST ${split}: image/label files do not match`);
  }
  const labels = Int32Array.from(lab.data);
  if (labels.some((l) => l > 9)) throw new CorruptFileError(`Fashion-MNIST ${split}: label out of range`);
  const [n, h, w] = img.dims;
  return { images: img.data, labels, n, c: 1, h, w, classes: FASHION_MNIST_CLASSES };
}
