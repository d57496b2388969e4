/**
 * The image pipeline: decode (JPEG with DCT scaling, PNG streamed), EXIF orientation, face alignment,
 * antialiased resize, crop and normalisation, shared by training, eval, distillation and serving.
 */
export {
  type DecodedImage,
  decodeImage,
  DEFAULT_MAX_COEFFICIENT_BYTES,
  DEFAULT_MAX_PIXELS,
  type ImageInfo,
  type ImageSource,
  openImage,
  type OpenOptions,
  pickScale,
  probeImage,
  type Scale,
  type ScaleOptions,
} from "./decode.ts";
export { orient, type RgbImage } from "./orient.ts";
export {
  type Box,
  centerBox,
  centerCropResize,
  type Planar,
  resize,
  toPlanar,
  warpAffine,
} from "./resample.ts";
export {
  type Affine,
  alignFace,
  alignFootprint,
  FACE_TEMPLATE_112,
  fitSimilarity,
  invertAffine,
  type Point,
  templateFor,
} from "./align.ts";
export { normalizePixels, parsePreprocess, preprocess, type PreprocessMeta } from "./normalize.ts";
export {
  type CropOptions,
  cropPixels,
  imageToPixels,
  imageToTensor,
  type NormalizeOptions,
  toUint8,
} from "./pipeline.ts";
export { ImageError } from "../errors.ts";
