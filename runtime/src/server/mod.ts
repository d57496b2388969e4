/**
 * Public API of the face service (platform-neutral). Deno KV storage is in `./store/kv.ts`
 * (Deno only); D1 storage in `./store/d1.ts`.
 * @module
 */
export {
  type AppEnv,
  type AppOptions,
  createApp,
  type HonoApp,
  type HttpApp,
  type LogEntry,
  parseLandmarks,
  type PlaygroundHandler,
  type RequestContext,
} from "./app.ts";
export {
  type ClassifierModel,
  classifierModelFromForward,
  type FaceModel,
  faceModelFromForward,
  type ForwardFn,
  l2normalizeRows,
  type Preprocess,
  type ServedModel,
} from "./served_model.ts";
export {
  batchingForward,
  type LoadedServedModel,
  type ManifestEntry,
  parseManifest,
  pickDefault,
  servedModelFromBundle,
  type WeightsManifest,
} from "./bundles.ts";
export { API_ERRORS, ApiError, type ApiErrorCode } from "./api_errors.ts";
export { type RateDecision, type RateLimiter, TokenBucketLimiter } from "./token_bucket.ts";
export { cosine, type Match, SearchIndex } from "./search.ts";
export {
  alignFace,
  decodeImage,
  DEFAULT_MAX_PIXELS,
  FACE_TEMPLATE_112,
  fitSimilarity,
  imageToTensor,
  openImage,
  type Point,
  type RgbImage,
} from "../image/mod.ts";
export { MemoryStore } from "./store/memory.ts";
export { type D1DatabaseLike, D1Store } from "./store/d1.ts";
export type {
  CollectionRecord,
  EmbeddingMatrix,
  FacePage,
  FaceRecord,
  GalleryStore,
  IdempotencyRecord,
  NewCollection,
  NewFace,
} from "./store/types.ts";
