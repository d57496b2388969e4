/**
 * Reader for PyTorch zip checkpoints (`torch.save`, format used since torch 1.6) holding a state_dict.
 * Pure: works on bytes, so it runs in Deno, browsers and Cloudflare Workers.
 */
import { CorruptFileError, UnsafePickleError, UnsupportedError } from "../errors.ts";
import { type DType, dtypeBytes, numel, type StateDict, type Tensor } from "../tensor.ts";
import { allocTyped, gatherStrided, isCContiguous, maxStridedIndex, typedFromBytes } from "./dtypes.ts";
import {
  PyGlobal,
  PyOpaque,
  type PyValue,
  TORCH_DTYPES,
  TORCH_STORAGE_DTYPES,
  TorchTensorRef,
  unpickle,
} from "./pickle.ts";
import { openZip, type ZipArchive } from "./zip.ts";

/** A storage referenced from the pickle, resolved lazily from `<prefix>/data/<key>`. */
interface StorageRec {
  key: string;
  dtype: DType;
  numel: number;
  untyped: boolean;
  data?: Uint8Array;
}

/** Options for {@link readPth}. */
export interface ReadPthOptions {
  /**
   * Cap on the total bytes of all materialised tensors. Default: 4 × file size + 64 MiB, which real
   * checkpoints never reach (tensors share storages only for views/tied weights) but stops a small
   * file from expanding many views of one storage into gigabytes.
   */
  maxTotalBytes?: number;
}

const WRAPPER_KEYS = ["state_dict", "model_state_dict", "model"];

/**
 * Read a state_dict from a `.pth` zip checkpoint: find `<prefix>/data.pkl`, unpickle it with the
 * allow-list, and build C-contiguous tensors from `<prefix>/data/<key>` honouring storage offset,
 * size and stride. fp16/bf16 stay raw 16-bit words; int64 is a BigInt64Array.
 * Wrapped checkpoints (`{"state_dict": …}`, `{"model": …}`) are unwrapped and a DataParallel
 * `module.` prefix on every key is stripped.
 */
export function readPth(bytes: Uint8Array, opts: ReadPthOptions = {}): StateDict {
  const zip = openZip(bytes);
  const pkls = zip.entries.filter((e) => e.name === "data.pkl" || e.name.endsWith("/data.pkl"));
  if (pkls.length === 0) {
    throw new CorruptFileError("pth: archive has no data.pkl", {
      hint: "this zip is not a torch.save checkpoint",
    });
  }
  if (pkls.length > 1) throw new CorruptFileError("pth: archive has more than one data.pkl");
  const prefix = pkls[0].name.slice(0, -"data.pkl".length);
  const byteorder = zip.has(`${prefix}byteorder`)
    ? new TextDecoder().decode(zip.read(`${prefix}byteorder`))
    : "";
  if (byteorder && byteorder.trim() !== "little") {
    throw new UnsupportedError(`pth: byte order "${byteorder.trim()}" is not supported`);
  }
  const storages = new Map<string, StorageRec>();
  let root: PyValue;
  try {
    root = unpickle(zip.read(pkls[0]), { persistentLoad: (pid) => persistentLoad(pid, storages) });
  } catch (e) {
    if (
      e instanceof UnsafePickleError && (zip.has(`${prefix}constants.pkl`) || hasDir(zip, `${prefix}code/`))
    ) {
      throw new UnsupportedError(
        "pth: this is a TorchScript archive (torch.jit.save), not a state_dict",
        "in Python: torch.save(torch.jit.load(path).state_dict(), 'weights.pth')",
      );
    }
    throw e;
  }
  const dict = unwrap(root);
  const maxTotal = opts.maxTotalBytes ?? 4 * bytes.length + 64 * 2 ** 20;
  let total = 0;
  const out: StateDict = new Map();
  for (const [k, v] of dict) {
    if (typeof k !== "string") throw new CorruptFileError("pth: state_dict key is not a string");
    if (!(v instanceof TorchTensorRef)) {
      throw new UnsupportedError(
        `pth: state_dict entry "${k}" is not a tensor`,
        "save only tensors: torch.save(model.state_dict(), path)",
      );
    }
    const t = materialise(k, v, zip, prefix);
    total += t.data.byteLength;
    if (total > maxTotal) {
      throw new CorruptFileError(
        `pth: tensors expand to more than ${maxTotal} bytes (views of shared storages?)`,
      );
    }
    out.set(k, t);
  }
  return stripModulePrefix(out);
}

function hasDir(zip: ZipArchive, dir: string): boolean {
  return zip.entries.some((e) => e.name.startsWith(dir));
}

/** `('storage', StorageType, key, location, numel)` → a storage record (bytes fetched later). */
function persistentLoad(pid: PyValue, storages: Map<string, StorageRec>): PyValue {
  if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== "storage") {
    throw new CorruptFileError("pth: persistent id is not ('storage', type, key, location, numel)");
  }
  const [, type, key, , n] = pid;
  if (!(type instanceof PyGlobal) || !Object.hasOwn(TORCH_STORAGE_DTYPES, type.name)) {
    throw new CorruptFileError("pth: persistent id does not name a torch storage class");
  }
  if (typeof key !== "string" || key.length === 0 || key.length > 256 || key.includes("/")) {
    throw new CorruptFileError("pth: bad storage key in persistent id");
  }
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
    throw new CorruptFileError(`pth: storage ${key} has an invalid element count`);
  }
  const dtype = TORCH_STORAGE_DTYPES[type.name] as DType;
  const untyped = type.name === "UntypedStorage";
  const prev = storages.get(key);
  if (prev && (prev.dtype !== dtype || prev.numel !== n)) {
    throw new CorruptFileError(`pth: storage ${key} is referenced with two different types or sizes`);
  }
  const rec = prev ?? { key, dtype, numel: n, untyped };
  storages.set(key, rec);
  return new PyOpaque(rec);
}

function storageBytes(rec: StorageRec, zip: ZipArchive, prefix: string): Uint8Array {
  if (rec.data) return rec.data;
  const name = `${prefix}data/${rec.key}`;
  if (!zip.has(name)) throw new CorruptFileError(`pth: storage file ${name} is missing`);
  const data = zip.read(name);
  const expect = rec.numel * dtypeBytes(rec.dtype);
  if (data.length !== expect) {
    throw new CorruptFileError(`pth: storage ${name} has ${data.length} bytes, expected ${expect}`);
  }
  rec.data = data;
  return data;
}

function materialise(key: string, ref: TorchTensorRef, zip: ZipArchive, prefix: string): Tensor {
  if (!(ref.storage instanceof PyOpaque)) throw new CorruptFileError(`pth: tensor "${key}" has no storage`);
  const rec = ref.storage.value as StorageRec;
  let dtype = rec.dtype;
  if (ref.dtype) {
    dtype = TORCH_DTYPES[ref.dtype.name] as DType;
    if (!rec.untyped && dtype !== rec.dtype) {
      throw new CorruptFileError(`pth: tensor "${key}" dtype differs from its storage`);
    }
  }
  const raw = storageBytes(rec, zip, prefix);
  const item = dtypeBytes(dtype);
  if (raw.length % item) {
    throw new CorruptFileError(`pth: storage of "${key}" is not a whole number of ${dtype}`);
  }
  const storageNumel = raw.length / item;
  const { stride, storageOffset: off } = ref;
  const size = [...ref.size]; // a memoised ref can back several keys: never share the array
  for (const d of size) {
    if (d > 2 ** 31) throw new CorruptFileError(`pth: tensor "${key}" has an absurd dimension ${d}`);
  }
  const n = numel(size);
  // Only broadcast (stride-0) views can hold more elements than their storage; keep those small.
  if (!Number.isSafeInteger(n) || (n > storageNumel && n > 2 ** 24)) {
    throw new CorruptFileError(`pth: tensor "${key}" has ${n} elements but its storage only ${storageNumel}`);
  }
  const last = maxStridedIndex(size, stride, off);
  if (!Number.isSafeInteger(last) || last >= storageNumel || (n > 0 && off >= storageNumel)) {
    throw new CorruptFileError(
      `pth: tensor "${key}" (offset ${off}, size [${size}], stride [${stride}]) reads past its ${storageNumel}-element storage`,
    );
  }
  if (n === 0) return { dtype, shape: size, data: allocTyped(dtype, 0) };
  if (isCContiguous(size, stride)) {
    return { dtype, shape: size, data: typedFromBytes(dtype, raw.subarray(off * item, (off + n) * item)) };
  }
  // Strides are non-negative, so every index lies in [off, last].
  const src = typedFromBytes(dtype, raw.subarray(off * item, (last + 1) * item));
  const dst = allocTyped(dtype, n);
  gatherStrided(src, dst, size, stride, 0);
  return { dtype, shape: size, data: dst };
}

function unwrap(root: PyValue): Map<PyValue, PyValue> {
  if (!(root instanceof Map)) {
    throw new UnsupportedError(
      "pth: checkpoint is not a dict",
      "save a state_dict: torch.save(model.state_dict(), path)",
    );
  }
  const isStateDict = (m: Map<PyValue, PyValue>) => [...m.values()].every((v) => v instanceof TorchTensorRef);
  if (root.size > 0 && isStateDict(root)) return root;
  for (const k of WRAPPER_KEYS) {
    const inner = root.get(k);
    if (inner instanceof Map && isStateDict(inner)) return inner;
  }
  if (root.size === 0) return root;
  const keys = [...root.keys()].filter((k) => typeof k === "string").slice(0, 8).join(", ");
  throw new UnsupportedError(
    `pth: no state_dict found (top-level keys: ${keys})`,
    'expected a state_dict or a dict with a "state_dict" / "model" entry of tensors',
  );
}

/** Strip a DataParallel/DistributedDataParallel `module.` prefix when every key has it. */
export function stripModulePrefix(sd: StateDict): StateDict {
  if (sd.size === 0 || ![...sd.keys()].every((k) => k.startsWith("module."))) return sd;
  const out: StateDict = new Map();
  for (const [k, v] of sd) out.set(k.slice("module.".length), v);
  return out;
}
