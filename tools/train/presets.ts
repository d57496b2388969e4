/**
 * Training presets (`deno task train --model <preset>`): architecture + recipe. `fmnist-repmlp`
 * is the recipe of the shipped Fashion-MNIST classifier, `faces-repmlp` the synthetic-identity demo.
 */
import { InvalidArgumentError } from "../../runtime/src/errors.ts";

/** A training recipe. */
export interface Preset {
  doc: string;
  arch: string;
  kwargs: Record<string, unknown>;
  /** classify: softmax cross-entropy; embed: AM-Softmax on L2-normalised embeddings. */
  task: "classify" | "embed";
  dataset: string;
  epochs: number;
  batch: number;
  lr: number;
  weightDecay: number;
  labelSmoothing: number;
  warmupSteps: number;
  /** Augmentation: random-crop zero padding and horizontal flip. */
  pad: number;
  flip: boolean;
}

const fmnistBase = {
  arch: "RepMLPClassifier",
  task: "classify" as const,
  dataset: "fashion-mnist",
  batch: 128,
  lr: 0.1,
  weightDecay: 5e-4,
  labelSmoothing: 0.1,
  warmupSteps: 300,
  pad: 2,
  flip: true,
};

const fmnistKwargs = {
  in_channels: 1,
  num_class: 10,
  image_size: 28,
  stem_channels: 0,
  channels: [32, 64],
  num_blocks: [1, 2],
  hs: [7, 7],
  fc3_groups: [4, 16],
  reparam_conv_k: [3],
  fc1_fc2_reduction: 4,
};

/** Presets by name. */
export const TRAIN_PRESETS: Record<string, Preset> = {
  "fmnist-repmlp": {
    doc: "shipped Fashion-MNIST classifier: RepMLPClassifier 28×28, stages 32@14² (h=w=7, g=4) and " +
      "2×64@7² (g=16), local 3×3, SGD-Nesterov lr 0.1 cosine, 10 epochs",
    ...fmnistBase,
    kwargs: { ...fmnistKwargs, variant: "full" },
    epochs: 10,
  },
  "fmnist-tiny": {
    doc: "tiny Fashion-MNIST RepMLP (CI smoke test / quick experiments)",
    ...fmnistBase,
    kwargs: { ...fmnistKwargs, channels: [16, 32], num_blocks: [1, 1], fc3_groups: [4, 8], variant: "full" },
    epochs: 1,
  },
  "faces-repmlp": {
    doc:
      "synthetic-identity demo face model: RepMLPFaceNet 96×96 (FaceRes-style, h=w=6, r=2, g=4), AM-Softmax",
    arch: "RepMLPFaceNet",
    kwargs: {},
    task: "embed",
    dataset: "synthetic-faces",
    epochs: 10,
    batch: 64,
    lr: 0.05,
    weightDecay: 5e-4,
    labelSmoothing: 0,
    warmupSteps: 100,
    pad: 4,
    flip: false, // aligned faces: the synthetic generator renders left/right asymmetric identities
  },
};

// Paper Table 1 ablations on Fashion-MNIST, equal recipes (see scripts/ablation.ts).
for (const v of ["full", "no_local", "no_global", "fc3_conv", "conv"]) {
  TRAIN_PRESETS[`fmnist-ablation-${v}`] = {
    doc: `ablation (${v}) of the Fashion-MNIST RepMLP, same recipe as fmnist-repmlp`,
    ...fmnistBase,
    kwargs: { ...fmnistKwargs, variant: v },
    epochs: 10,
  };
}

/** Look up a preset or throw with the list of names. */
export function getPreset(name: string): Preset {
  const p = TRAIN_PRESETS[name];
  if (!p) {
    throw new InvalidArgumentError(
      `unknown model preset '${name}'`,
      `choose one of: ${Object.keys(TRAIN_PRESETS).join(", ")} (deno task train --help lists them)`,
    );
  }
  return p;
}
