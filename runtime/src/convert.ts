/**
 * Checkpoint → deploy-mode model: resolve the architecture, validate keys, fold, and measure the
 * fold's own exactness (training-structure vs deploy-mode reference output on a random input).
 * Platform-neutral: file reading and bundle writing are the caller's.
 */
import { buildModel } from "./arch/registry.ts";
import "./arch/kit.ts"; // registers the kit's own trainable architectures (checkpoints of `deno task train`)
import {
  DLIB_CHIP_PADDING,
  dlibChipTemplate,
  FACE_API_ARCH,
  faceApiPreprocess,
  faceApiStateDict,
  isFaceApiRecognition,
} from "./arch/faceapi.ts";
import { resolveKwargs } from "./arch/infer.ts";
import { type Layer, type Mode, type ModelDesc, walk } from "./arch/ir.ts";
import { acceptsAnyHW, checkInputHW, sizeProblems } from "./arch/shapes.ts";
import { InvalidArgumentError } from "./errors.ts";
import { foldStateDict } from "./fold.ts";
import { detectMode } from "./params.ts";
import { randn } from "./random.ts";
import { forward } from "./reference.ts";
import { maxAbs, maxAbsDiff, type StateDict, type Tensor } from "./tensor.ts";

/** Metadata key under which the kit's own checkpoints record their architecture. */
export const MODEL_METADATA_KEY = "repmlp_edge_model";

/** What a bundle records about its architecture: enough to rebuild the layer tree. */
export interface ModelRecord {
  arch: string;
  kwargs: Record<string, unknown>;
  input: ModelDesc["input"];
}

/**
 * Rebuild a description from a bundle/checkpoint record. For a model that takes several sizes the
 * recorded input is its default size; one that does not fit (records written before RepMLPNet took
 * any size fixed hs·patch, e.g. 32 for hs = (8, 4, 2, 2)) gives way to the rebuilt default.
 */
export function descFromRecord(rec: ModelRecord): ModelDesc {
  const d = buildModel(rec.arch, rec.kwargs);
  const r = rec.input;
  if (!r) return d;
  if (d.anyHW && (r[1] === null || r[2] === null || sizeProblems(d, r[1], r[2]).length)) return d;
  return { ...d, input: r };
}

/** The record of a description. */
export function recordOf(desc: ModelDesc): ModelRecord {
  return { arch: desc.arch, kwargs: desc.kwargs, input: desc.input };
}

/**
 * A concrete example input shape (N, C, H, W): `inputHW` when given (checked: InputSizeError naming
 * the stage and partition when it does not fit), else the model's (default) size; bare blocks get
 * two partitions per axis.
 */
export function exampleInputShape(
  desc: ModelDesc,
  n = 2,
  inputHW?: [number, number],
): [number, number, number, number] {
  if (inputHW) {
    const [C, H, W] = desc.input;
    if (!acceptsAnyHW(desc) && (inputHW[0] !== H || inputHW[1] !== W)) {
      checkInputHW(desc, inputHW[0], inputHW[1]); // names the layer that fixes the size, where one does
      throw new InvalidArgumentError(
        `${desc.arch} has a fixed input ${C}×${H}×${W}, got ${inputHW.join("×")}`,
      );
    }
    checkInputHW(desc, inputHW[0], inputHW[1]);
    return [n, C, inputHW[0], inputHW[1]];
  }
  const [C, H, W] = desc.input;
  let ph = 4, pw = 4;
  let found = false;
  walk(desc.root, (l: Layer) => {
    if (!found && (l.kind === "repmlpnet_block" || l.kind === "repmlp21")) {
      ph = l.h;
      pw = l.w;
      found = true;
    }
  });
  return [n, C, H ?? 2 * ph, W ?? 2 * pw];
}

/** Options of {@link convertStateDict}. */
export interface ConvertOptions {
  /** Official class or preset; optional when `metadata` carries the kit's model record. */
  arch?: string;
  /** Python constructor kwargs; what the checkpoint determines may be left out. */
  kwargs?: Record<string, unknown>;
  /** safetensors metadata of the checkpoint, if any. */
  metadata?: Record<string, string>;
  /** Seed of the random check input. */
  seed?: number;
  /** Batch of the check input. */
  checkBatch?: number;
  /** H×W of the check input (default: the model's size; see {@link exampleInputShape}). */
  inputHW?: [number, number];
  /** Called after each folded layer. */
  onProgress?: (done: number, total: number, layer: string) => void;
}

/** Result of {@link convertStateDict}. */
export interface ConvertResult {
  /** The resolved architecture. */
  desc: ModelDesc;
  /** Layout the checkpoint was in. */
  mode: Mode;
  /** Deploy-mode state_dict (official deploy keys). */
  deploy: StateDict;
  /** Fold check on a random input: max |train − deploy| and max |train| (null for deploy checkpoints). */
  check: { inputShape: number[]; maxAbsDiff: number; maxAbsOut: number } | null;
  /** Kwargs taken from the checkpoint because the user left them out. */
  inferred: string[];
}

/** Resolve the description of a checkpoint from CLI arguments and/or its own metadata. */
export function resolveDesc(sd: StateDict, opts: ConvertOptions): { desc: ModelDesc; inferred: string[] } {
  const rec = opts.metadata?.[MODEL_METADATA_KEY];
  if (!opts.arch) {
    if (!rec) {
      throw new InvalidArgumentError(
        "this checkpoint does not say which architecture it is",
        "pass --arch <RepMLP|RepMLPBlock|RepMLPNetUnit|RepMLPNet|RepMLPBottleneckBlock|RepMLPLightBlock|RepMLPNet-T224|…> " +
          "and --kwargs '<json>' with the Python constructor's arguments",
      );
    }
    let parsed: ModelRecord;
    try {
      parsed = JSON.parse(rec);
    } catch (e) {
      throw new InvalidArgumentError(`checkpoint metadata '${MODEL_METADATA_KEY}' is not valid JSON: ${e}`);
    }
    return {
      desc: descFromRecord({ ...parsed, kwargs: { ...parsed.kwargs, ...opts.kwargs } }),
      inferred: [],
    };
  }
  const user = opts.kwargs ?? {};
  const kw = resolveKwargs(opts.arch, user, sd);
  const inferred = Object.keys(kw).filter((k) => !(k in user));
  return { desc: buildModel(opts.arch, kw), inferred };
}

/** Fold (if needed) and check a checkpoint. */
export function convertStateDict(sd: StateDict, opts: ConvertOptions = {}): ConvertResult {
  const { desc, inferred } = resolveDesc(sd, opts);
  const mode = detectMode(desc, sd);
  if (mode === "deploy") return { desc, mode, deploy: sd, check: null, inferred };
  const shape = exampleInputShape(desc, opts.checkBatch ?? 2, opts.inputHW);
  const deploy = foldStateDict(desc, sd, opts.onProgress);
  const x = randn(shape, opts.seed ?? 1234);
  const yt = forward(desc, sd, x, "train");
  const yd = forward(desc, deploy, x, "deploy");
  return {
    desc,
    mode,
    deploy,
    check: { inputShape: shape, maxAbsDiff: maxAbsDiff(yt.data, yd.data), maxAbsOut: maxAbs(yt.data) },
    inferred,
  };
}

/** A tfjs-weights import: training-layout state_dict plus the metadata a kit checkpoint carries. */
export interface TfjsImport {
  /** The recognised (or forced) architecture. */
  desc: ModelDesc;
  /** Training-layout state_dict (official/kit key names, PyTorch layouts). */
  stateDict: StateDict;
  /** safetensors-style metadata: the model record and the bundle meta (preprocessing). */
  metadata: Record<string, string>;
}

/** Architectures importable from TensorFlow.js weights, recognised by their weight names. */
const TFJS_IMPORTERS = [{
  arch: FACE_API_ARCH,
  matches: isFaceApiRecognition,
  toStateDict: faceApiStateDict,
  meta: (d: ModelDesc) => ({
    preprocess: faceApiPreprocess(d),
    embedding: { normalised: false, source: "face-api computeFaceDescriptor" },
    align: {
      template: dlibChipTemplate(),
      source: `dlib get_face_chip_details(size ${d.input[1]}, padding ${DLIB_CHIP_PADDING}) mean face shape`,
    },
  }),
}];

/**
 * Map decoded tfjs weights (see `io/tfjs.ts`) to a state_dict of a known architecture, recognised
 * from the weight names unless `arch` forces one. Throws InvalidArgumentError when nothing matches.
 */
export function importTfjsWeights(weights: Map<string, Tensor>, arch?: string): TfjsImport {
  const imp = arch
    ? TFJS_IMPORTERS.find((i) => i.arch === arch)
    : TFJS_IMPORTERS.find((i) => i.matches(weights.keys()));
  if (!imp) {
    throw new InvalidArgumentError(
      arch
        ? `architecture '${arch}' cannot be imported from tfjs weights`
        : "unrecognised tfjs weights manifest",
      `tfjs imports known: ${TFJS_IMPORTERS.map((i) => i.arch).join(", ")}`,
    );
  }
  const desc = buildModel(imp.arch);
  return {
    desc,
    stateDict: imp.toStateDict(desc, weights),
    metadata: {
      [MODEL_METADATA_KEY]: JSON.stringify(recordOf(desc)),
      repmlp_edge_meta: JSON.stringify(imp.meta(desc)),
    },
  };
}
