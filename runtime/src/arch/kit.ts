/**
 * The kit's own trainable architectures, composed only from existing IR layer kinds so the
 * reference forward, the fold, the ONNX export and the tfjs training graph all handle them.
 *
 * - `RepMLPClassifier`: small image classifier in the spirit of the paper's CIFAR pure-MLP model
 *   (FC 1×1 projections + RepMLP blocks, BN everywhere, ReLU after every block), with a conv stem
 *   and k=2/stride-2 "patchify" downsampling. `variant` builds the paper's Table 1 ablations.
 * - `RepMLPFaceNet`: RepMLP-FaceRes-style embedding network for aligned 96×96 faces
 *   (h = w = 6, fc1_fc2_reduction r = 2, fc3_groups g = 4 as in the paper, channels scaled down
 *   for the edge), flatten → linear embedding → L2 normalisation.
 */
import { InvalidArgumentError } from "../errors.ts";
import type { Layer, ModelDesc } from "./ir.ts";
import { key } from "./ir.ts";
import { convbn, divides, int, ints, registerArch, repmlp21 } from "./registry.ts";

type Kw = Record<string, unknown>;

/** Ablation variants of the RepMLP block (paper Table 1). */
export const CLASSIFIER_VARIANTS = ["full", "no_local", "no_global", "fc3_conv", "conv"] as const;
/** One of {@link CLASSIFIER_VARIANTS}. */
export type ClassifierVariant = typeof CLASSIFIER_VARIANTS[number];

function at<T>(a: T[], i: number, what: string): T {
  if (i >= a.length) throw new InvalidArgumentError(`kwarg '${what}' needs one entry per stage`);
  return a[i];
}

/**
 * One block: x → relu(x + RepMLP(FC1×1(x))). The FC projection is a 1×1 conv + BN + ReLU
 * (the paper's "FC(C, C)"); the RepMLP keeps its own BNs (fc3_bn and the local branches).
 */
function block(
  name: string,
  C: number,
  H: number,
  h: number,
  g: number,
  ks: number[],
  r: number,
  variant: ClassifierVariant,
): Layer {
  const proj = convbn(key(name, "proj"), C, C, 1, { act: "relu", fuse: true });
  let mix: Layer;
  if (variant === "conv") {
    // Convolutional counterpart: 3×3 conv + BN instead of the RepMLP.
    mix = convbn(key(name, "conv"), C, C, 3, { pad: 1, fuse: true });
  } else if (variant === "fc3_conv") {
    // FC3 replaced by a conv as large as the partition (odd), local branches merged into it.
    const k = h % 2 === 1 ? h : h - 1;
    mix = convbn(key(name, "conv"), C, C, k, { pad: (k - 1) / 2, groups: g, fuse: true });
  } else {
    const l = repmlp21({
      in_channels: C,
      out_channels: C,
      H,
      W: H,
      h,
      w: h,
      reparam_conv_k: variant === "no_local" ? [] : ks,
      fc1_fc2_reduction: r,
      fc3_groups: g,
    }, key(name, "repmlp"));
    if (variant === "no_global") l.gp = false;
    mix = l;
  }
  return { kind: "residual", body: { kind: "seq", layers: [proj, mix] }, shortcut: null, post: "relu" };
}

function classifier(kw: Kw, name: string): { root: Layer; input: ModelDesc["input"] } {
  const inC = int(kw, "in_channels"), numClass = int(kw, "num_class"), size = int(kw, "image_size");
  const stem = kw.stem_channels === 0 ? 0 : int(kw, "stem_channels");
  const ch = ints(kw, "channels"),
    nb = ints(kw, "num_blocks"),
    hs = ints(kw, "hs"),
    gs = ints(kw, "fc3_groups");
  const ks = ints(kw, "reparam_conv_k", true), r = int(kw, "fc1_fc2_reduction");
  const variant = kw.variant as ClassifierVariant;
  if (!CLASSIFIER_VARIANTS.includes(variant)) {
    throw new InvalidArgumentError(
      `variant must be one of ${CLASSIFIER_VARIANTS.join(", ")}, got '${kw.variant}'`,
    );
  }
  // Optional full-resolution 3×3 conv stem (stem_channels = 0: none, the first patchify sees the image).
  const layers: Layer[] = stem > 0
    ? [convbn(key(name, "stem"), inC, stem, 3, { pad: 1, act: "relu", fuse: true })]
    : [];
  let C = stem > 0 ? stem : inC, H = size;
  for (let i = 0; i < ch.length; i++) {
    divides(2, H, "image_size must halve at every stage");
    H /= 2;
    layers.push(convbn(key(name, `down${i}`), C, ch[i], 2, { stride: 2, act: "relu", fuse: true }));
    C = ch[i];
    const h = at(hs, i, "hs"), g = at(gs, i, "fc3_groups");
    divides(h, H, `stage ${i}: resolution must be a multiple of hs[${i}]`);
    for (let j = 0; j < at(nb, i, "num_blocks"); j++) {
      layers.push(block(key(name, `stages.${i}.${j}`), C, H, h, g, ks, r, variant));
    }
  }
  layers.push({ kind: "gap" }, {
    kind: "linear",
    name: key(name, "head"),
    inF: C,
    outF: numClass,
    bias: true,
  });
  return { root: { kind: "seq", layers }, input: [inC, size, size] };
}

function faceNet(kw: Kw, name: string): { root: Layer; input: ModelDesc["input"] } {
  const inC = int(kw, "in_channels"), emb = int(kw, "embedding_dim"), size = int(kw, "image_size");
  const stem = ints(kw, "stem_channels"), ch = ints(kw, "channels"), gs = ints(kw, "fc3_groups");
  const h = int(kw, "h"), r = int(kw, "fc1_fc2_reduction"), ks = ints(kw, "reparam_conv_k", true);
  const nb = ints(kw, "num_blocks");
  const layers: Layer[] = [];
  let C = inC, H = size;
  // Conv stem: each level halves the resolution (patchify); levels after the first add a 3×3 conv
  // (none at 48×48, where it would dominate the cost on edge CPUs).
  for (let i = 0; i < stem.length; i++) {
    divides(2, H, "image_size must halve at every stem level");
    H /= 2;
    layers.push(convbn(key(name, `stem.${i}.down`), C, stem[i], 2, { stride: 2, act: "relu", fuse: true }));
    if (i > 0) {
      layers.push(
        convbn(key(name, `stem.${i}.conv`), stem[i], stem[i], 3, { pad: 1, act: "relu", fuse: true }),
      );
    }
    C = stem[i];
  }
  for (let i = 0; i < ch.length; i++) {
    divides(2, H, "image_size must halve at every stage");
    H /= 2;
    layers.push(convbn(key(name, `down${i}`), C, ch[i], 2, { stride: 2, act: "relu", fuse: true }));
    C = ch[i];
    divides(h, H, `stage ${i}: resolution must be a multiple of h`);
    for (let j = 0; j < at(nb, i, "num_blocks"); j++) {
      layers.push(block(key(name, `stages.${i}.${j}`), C, H, h, at(gs, i, "fc3_groups"), ks, r, "full"));
    }
  }
  // Position-aware embedding (faces are aligned): flatten, not global pooling.
  layers.push(
    { kind: "flatten" },
    { kind: "linear", name: key(name, "embedding"), inF: C * H * H, outF: emb, bias: true },
    { kind: "l2norm" },
  );
  return { root: { kind: "seq", layers }, input: [inC, size, size] };
}

registerArch("RepMLPClassifier", {
  doc:
    "kit: small RepMLP image classifier (paper's CIFAR pure-MLP spirit; conv stem, FC 1×1 + RepMLP blocks)",
  kit: true,
  defaults: {
    in_channels: 1,
    num_class: 10,
    image_size: 28,
    stem_channels: 0,
    channels: [32, 64],
    num_blocks: [1, 1],
    hs: [7, 7],
    fc3_groups: [4, 16],
    reparam_conv_k: [1, 3],
    fc1_fc2_reduction: 4,
    variant: "full",
  },
  build: classifier,
});

registerArch("RepMLPFaceNet", {
  doc:
    "kit: RepMLP-FaceRes-style face embedding net, 96×96 aligned RGB, h=w=6, r=2, g=4, L2-normalised output",
  kit: true,
  defaults: {
    in_channels: 3,
    embedding_dim: 128,
    image_size: 96,
    stem_channels: [16, 32],
    channels: [48, 64],
    num_blocks: [1, 1],
    h: 6,
    fc3_groups: [4, 8],
    reparam_conv_k: [3],
    fc1_fc2_reduction: 2,
  },
  build: faceNet,
});
