/**
 * File formats: torch `.pth` (safe unpickler), safetensors, NumPy `.npy`/`.npz`, and the deployable bundle.
 * Everything exported here works on bytes and runs in Deno, browsers and Cloudflare Workers.
 * The filesystem entry points (`readStateDictFile`, `readFileBytes`) live in `./files.ts` (Deno only)
 * and are deliberately not re-exported, so Worker bundles never pull in `Deno.*`.
 * @module
 */
export { crc32, isZip, openZip, unzip, ZipArchive, type ZipEntry } from "./zip.ts";
export {
  isAllowedGlobal,
  type PyDict,
  PyGlobal,
  PyOpaque,
  type PyValue,
  TorchTensorRef,
  unpickle,
  type UnpickleLimits,
  type UnpickleOptions,
} from "./pickle.ts";
export { readPth, type ReadPthOptions, stripModulePrefix } from "./pth.ts";
export {
  isSafetensors,
  parseSafetensors,
  readSafetensors,
  type SafetensorsDType,
  type SafetensorsEntry,
  type SafetensorsLayout,
  writeSafetensors,
} from "./safetensors.ts";
export { isNpy, readNpy, readNpz, writeNpy, writeNpz } from "./npy.ts";
export {
  type Bundle,
  BUNDLE_FORMAT,
  BUNDLE_FORMAT_VERSION,
  type BundleDType,
  dequantize,
  dequantizeInt8PerChannel,
  type Int8PerChannel,
  MIN_COMPRESS_ELEMENTS,
  quantizeInt8PerChannel,
  readBundle,
  SCALE_SUFFIX,
  writeBundle,
  type WriteBundleInput,
} from "./bundle.ts";
export {
  decodeTfjsWeights,
  isTfjsManifest,
  parseTfjsManifest,
  type TfjsManifestGroup,
  type TfjsQuantization,
  type TfjsWeightSpec,
} from "./tfjs.ts";
export { detectFormat, readStateDict, type StateDictFormat } from "./statedict.ts";
