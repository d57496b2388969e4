/**
 * Dataset specs of `deno task train/eval --dataset …`:
 *   fashion-mnist[:DIR]          Debian's dataset-fashion-mnist (or the four IDX files in DIR)
 *   folder:PATH                  PATH/train/<class>/*.png|jpg (+ PATH/test/<class>/…), or PATH/<class>/…
 *   synthetic-faces[:IDS]        procedurally generated identities (deterministic)
 */
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import { type ImageSet, loadFashionMnist } from "../data/fashion_mnist.ts";

/** A loaded dataset with its normalisation. */
export interface Dataset {
  name: string;
  train: ImageSet;
  /** classify: test split; embed: held-out identities for verification. */
  test: ImageSet | null;
  classes: string[];
  mean: number[];
  std: number[];
}

/** Per-channel mean/std of pixel/255 over a set (subsampled to ≤ 10k images). */
export function channelStats(set: ImageSet): { mean: number[]; std: number[] } {
  const plane = set.h * set.w, step = Math.max(1, Math.floor(set.n / 10000));
  const mean: number[] = [], std: number[] = [];
  for (let c = 0; c < set.c; c++) {
    let s = 0, s2 = 0, k = 0;
    for (let n = 0; n < set.n; n += step) {
      const o = (n * set.c + c) * plane;
      for (let i = 0; i < plane; i++) {
        const v = set.images[o + i] / 255;
        s += v;
        s2 += v * v;
      }
      k += plane;
    }
    const m = s / k;
    mean.push(+m.toFixed(4));
    std.push(+Math.sqrt(Math.max(s2 / k - m * m, 1e-6)).toFixed(4));
  }
  return { mean, std };
}

/** Load a dataset from its spec. `split` = "test" loads only what evaluation needs. */
export async function loadDataset(
  spec: string,
  opts: { testOnly?: boolean; seed?: number; task?: "classify" | "embed" } = {},
): Promise<Dataset> {
  const [kind, ...rest] = spec.split(":");
  const arg = rest.join(":");
  if (kind === "fashion-mnist") {
    const test = await loadFashionMnist("test", arg || undefined);
    const train = opts.testOnly ? test : await loadFashionMnist("train", arg || undefined);
    // Fixed, documented normalisation (Fashion-MNIST train statistics).
    return { name: "fashion-mnist", train, test, classes: train.classes, mean: [0.286], std: [0.353] };
  }
  if (kind === "folder") {
    if (!arg) throw new InvalidArgumentError("folder dataset needs a path: --dataset folder:PATH");
    const { loadFolderDataset } = await import("../data/folder.ts");
    const { train, test } = await loadFolderDataset(arg, opts.task ?? "classify");
    return { name: `folder:${arg}`, train, test, classes: train.classes, ...channelStats(train) };
  }
  if (kind === "synthetic-faces") {
    const { syntheticFaceDataset } = await import("../data/faces.ts");
    const ids = arg ? Number(arg) : undefined;
    if (arg && !(Number.isInteger(ids) && ids! > 1)) {
      throw new InvalidArgumentError(`synthetic-faces:<identities> needs an integer > 1, got '${arg}'`);
    }
    const { train, test } = syntheticFaceDataset({
      trainIdentities: ids,
      seed: opts.seed ?? 0,
      ...(opts.testOnly ? { perTrain: 1 } : {}),
    });
    return {
      name: "synthetic-faces",
      train,
      test,
      classes: train.classes,
      mean: [0.5, 0.5, 0.5],
      std: [0.5, 0.5, 0.5],
    };
  }
  throw new InvalidArgumentError(
    `unknown dataset '${spec}'`,
    "use fashion-mnist, folder:PATH or synthetic-faces",
  );
}
