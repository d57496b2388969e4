/**
 * repmlp-edge: RepMLP models from training to edge functions.
 *
 * - Read official PyTorch checkpoints safely ({@link readPth}, {@link readSafetensors}), describe any
 *   official RepMLP class with the Python constructor's kwargs ({@link buildModel}), fold it exactly into
 *   deploy mode ({@link foldStateDict}, {@link convertStateDict}) and write compact verified bundles
 *   ({@link writeBundle}, {@link loadBundle}).
 * - Run bundles on onnxruntime-web (WebGPU / WASM), onnxruntime-node or the pure-TypeScript reference
 *   ({@link createSession}).
 * - Serve the face-recognition HTTP API on Deno or Cloudflare Workers ({@link createApp}).
 *
 * @example Embed a (random) 96×96 image with the shipped int8 demo face model (run from the repo root)
 * ```ts
 * import { createSessionFromBundle, randn } from "./mod.ts";
 * const bytes = await Deno.readFile("weights/face-synthetic-demo.int8.safetensors");
 * const session = await createSessionFromBundle(bytes, { backend: "wasm" });
 * const y = await session.run(randn([1, 3, 96, 96], 0));
 * console.log(session.backend, y.shape); // wasm [ 1, 128 ]
 * await session.dispose();
 * ```
 * @module
 */

/** Tensor types and helpers: C-contiguous tensors, state_dicts, fp16 conversion. */
export {
  type DType,
  type F32,
  f32,
  floatToHalf,
  halfToFloat,
  maxAbsDiff,
  numel,
  type StateDict,
  type Tensor,
  type TensorData,
  toF32,
} from "./src/tensor.ts";

/** Typed errors with stable codes: every deliberate failure of the kit is one of these. */
export {
  ArchMismatchError,
  CorruptFileError,
  type ErrorCode,
  InputSizeError,
  IntegrityError,
  InvalidArgumentError,
  InvalidInputError,
  RepmlpError,
  UnsafePickleError,
  UnsupportedError,
} from "./src/errors.ts";

/** Architecture descriptions: the layer IR, official classes and presets, the kit's own models. */
export {
  type ActLayer,
  type ArchDef,
  archNames,
  type AvgPoolLayer,
  type BNLayer,
  buildModel,
  type Built,
  type ConvBNLayer,
  type ConvLayer,
  type ConvScaleLayer,
  type FlattenLayer,
  type GapLayer,
  type Kw,
  type L2NormLayer,
  type Layer,
  type LinearLayer,
  type MaxPoolLayer,
  type Mode,
  type ModelDesc,
  type ParamSpec,
  paramSpecs,
  PRESETS,
  registerArch,
  type RepMLP21Layer,
  type RepMLPNetBlockLayer,
  type ResidualLayer,
  type SeqLayer,
  type ZeroPadLayer,
} from "./src/arch/mod.ts";

/** Which input sizes a model takes (RepMLPNet: any size whose stage maps divide into the partitions). */
export { acceptsAnyHW, checkInputHW, type SizeProblem, sizeProblems } from "./src/arch/shapes.ts";

/** Kwargs inference from checkpoint shapes, and cross-checking of user kwargs. */
export { inferKwargs, resolveKwargs } from "./src/arch/infer.ts";

/** The fold (training-time → deploy-mode state_dict, official deploy keys). */
export { foldStateDict } from "./src/fold.ts";

/** Checkpoint → deploy model with the fold's own exactness check. */
export {
  type ConvertOptions,
  type ConvertResult,
  convertStateDict,
  importTfjsWeights,
  type TfjsImport,
} from "./src/convert.ts";

/** State_dict validation against a description (train vs deploy layout). */
export { detectMode, type MatchReport, matchStateDict } from "./src/params.ts";

/** Pure-TypeScript reference forward (NCHW float32), training-structure or deploy mode. */
export { forward } from "./src/reference.ts";

/** Seeded random inputs and weights (tests, benchmarks). */
export { randn, randomStateDict } from "./src/random.ts";

/** File formats: safe `.pth` reader, safetensors, npy/npz, tfjs weights manifests, bundles (all work on bytes, Workers-safe). */
export {
  type Bundle,
  type BundleDType,
  decodeTfjsWeights,
  parseTfjsManifest,
  readBundle,
  readNpy,
  readNpz,
  readPth,
  type ReadPthOptions,
  readSafetensors,
  readStateDict,
  type TfjsManifestGroup,
  type TfjsQuantization,
  type TfjsWeightSpec,
  writeBundle,
  type WriteBundleInput,
  writeNpy,
  writeSafetensors,
} from "./src/io/mod.ts";

/** Bundles as runnable models. */
export { bundleFromConversion, loadBundle, type LoadedModel } from "./src/deploy_model.ts";

/** Runtime adapter: one Session interface over ORT-web WebGPU/WASM, onnxruntime-node and the reference. */
export {
  type Backend,
  createSession,
  createSessionFromBundle,
  type Fc3Impl,
  type GpuAdapterLike,
  type GpuLike,
  type ModelSource,
  type Precision,
  type ResolvedBackend,
  type Session,
  type SessionOptions,
} from "./src/backends/mod.ts";

/** Options every ORT engine takes (threads, logging, a pre-compiled ORT wasm module for Workers). */
export type { EngineOptions } from "./src/backends/engine.ts";

/** ONNX graph export of a deploy model (dynamic batch axis). */
export * as onnx from "./src/onnx/mod.ts";

/** The one image pipeline: decode at the needed scale (JPEG DCT scaling), EXIF, align/crop, resize, normalise. */
export * as image from "./src/image/mod.ts";

/** The platform-neutral face-recognition app and its parts (models, stores, images). */
export {
  type AppEnv,
  type AppOptions,
  type ClassifierModel,
  classifierModelFromForward,
  type CollectionRecord,
  createApp,
  type EmbeddingMatrix,
  type FaceModel,
  faceModelFromForward,
  type FacePage,
  type FaceRecord,
  type ForwardFn,
  type GalleryStore,
  type HonoApp,
  type HttpApp,
  type IdempotencyRecord,
  type LoadedServedModel,
  type LogEntry,
  type ManifestEntry,
  MemoryStore,
  type NewCollection,
  type NewFace,
  type PlaygroundHandler,
  type Preprocess,
  type RateDecision,
  type RateLimiter,
  type RequestContext,
  type ServedModel,
  servedModelFromBundle,
} from "./src/server/mod.ts";

/** The browser playground page served at `/`. */
export { playgroundHandler } from "./src/server/playground.ts";

/**
 * Face detection: MediaPipe BlazeFace (the shipped `weights/blazeface-back-256.onnx`) on the ORT
 * backends, a window pyramid for small faces, five alignment landmarks per face.
 */
export {
  type DetectOptions,
  type DetectorOptions,
  type DetectorSession,
  type DetectResult,
  type Face,
  FaceDetector,
  findFaces,
  type FindOptions,
  type RgbLike,
  type ScaledSource,
  type Window,
} from "./src/face/detect.ts";
/** Five alignment landmarks from BlazeFace's keypoints, and the point type. */
export { fiveLandmarks, type Point } from "./src/face/landmarks.ts";
/** BlazeFace anchor/decoder configurations and the raw detection type. */
export {
  BLAZEFACE_BACK,
  BLAZEFACE_FRONT,
  type BlazeFaceConfig,
  type RawDetection,
} from "./src/face/blazeface.ts";
