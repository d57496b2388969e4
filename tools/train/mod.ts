/**
 * Training with TensorFlow.js: the IR-driven training graph, optimiser/losses, datasets,
 * evaluation metrics, presets and the training loop ({@link fit}). (`deno task train|eval|ablation|data:faces`
 * are the CLIs.)
 */
export { type BackendName, initBackend, values } from "./tfjs_backend.ts";
export { BN_MOMENTUM, type BNUpdate, TrainGraph } from "./tfjs_graph.ts";
export { bmm, bnTrain, conv2d, convAsFC, gelu, groupedLinear, linear, mm } from "./grad_ops.ts";
export { AMSoftmax, cosineLR, crossEntropy, type LossFn, predictBatch, SGD, trainStep } from "./trainer.ts";
export { channelStats, type Dataset, loadDataset } from "./datasets.ts";
export { type Predict, predictSet, top1, type Verification, verification } from "./evaluate.ts";
export { getPreset, type Preset, TRAIN_PRESETS } from "./presets.ts";
export { fit, type FitOptions, type FitProgress, type FitResult } from "./fit.ts";
export { curvesSvg, type Pt } from "./curves.ts";
export {
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DIR,
  type ImageSet,
  loadFashionMnist,
  parseIdx,
} from "../data/fashion_mnist.ts";
export { loadFolderDataset, loadImage, probeFile } from "../data/folder.ts";
export {
  type Identity,
  identity,
  renderFace,
  renderIdentities,
  syntheticFaceDataset,
} from "../data/faces.ts";
export { type BatchOptions, makeBatch, permutation } from "../data/augment.ts";
export { parsePreprocess, preprocess, type PreprocessMeta } from "../../runtime/src/image/normalize.ts";
