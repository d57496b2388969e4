/**
 * A safe, allow-listed unpickler for PyTorch state_dicts.
 *
 * Nothing in a pickle is ever called: GLOBALs resolve only to inert {@link PyGlobal} markers from a
 * fixed allow-list (checked the moment the GLOBAL/STACK_GLOBAL opcode is read), and REDUCE is only
 * interpreted for the few callables a state_dict needs (OrderedDict and torch's tensor rebuilders),
 * each implemented here as pure data construction. Opcodes that build arbitrary objects
 * (INST, OBJ, NEWOBJ, NEWOBJ_EX, EXT*) are refused. Every length is checked against the remaining
 * bytes, and memo/stack sizes are bounded, so hostile input ends in a typed error, never a hang.
 */
import { CorruptFileError, UnsafePickleError, UnsupportedError } from "../errors.ts";

/** A Python value as produced by this unpickler. Tuples are frozen arrays, lists are plain arrays. */
export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | PyDict
  | PyGlobal
  | TorchTensorRef
  | PyOpaque;

/** dict / OrderedDict. Python's insertion order is kept. */
export type PyDict = Map<PyValue, PyValue>;

/** An allow-listed `module.name` reference. It is a marker only; nothing is imported or called. */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  /** `module.name`. */
  get qualname(): string {
    return `${this.module}.${this.name}`;
  }
}

/** Value returned by a persistent-id loader (e.g. a torch storage); the unpickler never looks inside. */
export class PyOpaque {
  constructor(readonly value: unknown) {}
}

/** The result of `torch._utils._rebuild_tensor_v2/v3(storage, offset, size, stride, …)`, unresolved. */
export class TorchTensorRef {
  constructor(
    /** What the persistent loader returned for the storage. */
    readonly storage: PyValue,
    readonly storageOffset: number,
    readonly size: number[],
    readonly stride: number[],
    /** Only for `_rebuild_tensor_v3`: the element dtype (a `torch.<dtype>` global). */
    readonly dtype?: PyGlobal,
  ) {}
}

/** Limits that keep hostile pickles cheap. Defaults suit any real state_dict. */
export interface UnpickleLimits {
  /** Max memo entries (default 1,000,000). */
  maxMemo?: number;
  /** Max values on the stack, marks included (default 1,000,000). */
  maxStack?: number;
  /** Max byte length of one LONG1/LONG4 integer (default 64). */
  maxLongBytes?: number;
}

/** Options for {@link unpickle}. */
export interface UnpickleOptions extends UnpickleLimits {
  /** Resolves BINPERSID ids (torch: `('storage', StorageType, key, location, numel)`). */
  persistentLoad?: (pid: PyValue) => PyValue;
}

/** Torch storage classes and their element dtypes. */
export const TORCH_STORAGE_DTYPES: Readonly<Record<string, string>> = {
  FloatStorage: "float32",
  DoubleStorage: "float64",
  HalfStorage: "float16",
  BFloat16Storage: "bfloat16",
  LongStorage: "int64",
  IntStorage: "int32",
  ShortStorage: "int16",
  CharStorage: "int8",
  ByteStorage: "uint8",
  BoolStorage: "bool",
  UntypedStorage: "uint8",
};

/** Torch dtype globals (`torch.float32` …, used by `_rebuild_tensor_v3`) and their kit dtypes. */
export const TORCH_DTYPES: Readonly<Record<string, string>> = {
  float32: "float32",
  float: "float32",
  float64: "float64",
  double: "float64",
  float16: "float16",
  half: "float16",
  bfloat16: "bfloat16",
  int64: "int64",
  long: "int64",
  int32: "int32",
  int: "int32",
  int16: "int16",
  short: "int16",
  int8: "int8",
  uint8: "uint8",
  bool: "bool",
};

const REDUCERS = new Set([
  "collections.OrderedDict",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_tensor_v3",
  "torch._utils._rebuild_parameter",
  "torch._utils._rebuild_parameter_with_state",
]);

/** Whether `module.name` may appear as a GLOBAL. */
export function isAllowedGlobal(module: string, name: string): boolean {
  const q = `${module}.${name}`;
  if (REDUCERS.has(q)) return true;
  if (module === "torch") {
    return Object.hasOwn(TORCH_STORAGE_DTYPES, name) || Object.hasOwn(TORCH_DTYPES, name);
  }
  return module === "torch.storage" && name === "UntypedStorage";
}

// Opcodes that are understood but refused because they construct or call arbitrary objects,
// or are text-mode (protocol 0/1) forms a torch zip checkpoint never uses.
const REFUSED: Record<number, string> = {
  0x69: "INST",
  0x6f: "OBJ",
  0x81: "NEWOBJ",
  0x92: "NEWOBJ_EX",
  0x82: "EXT1",
  0x83: "EXT2",
  0x84: "EXT4",
  0x50: "PERSID",
  0x49: "INT",
  0x4c: "LONG",
  0x46: "FLOAT",
  0x53: "STRING",
  0x56: "UNICODE",
  0x67: "GET",
  0x70: "PUT",
  0x8f: "EMPTY_SET",
  0x90: "ADDITEMS",
  0x91: "FROZENSET",
  0x96: "BYTEARRAY8",
  0x97: "NEXT_BUFFER",
  0x98: "READONLY_BUFFER",
};

const utf8 = new TextDecoder("utf-8", { fatal: true });
const latin1 = new TextDecoder("latin1");
const MARK = Symbol("mark");

function corrupt(msg: string): never {
  throw new CorruptFileError(`pickle: ${msg}`, {
    hint: "the checkpoint is damaged; re-save it with torch.save",
  });
}

function isTuple(v: unknown): v is PyValue[] {
  return Array.isArray(v) && Object.isFrozen(v);
}

function asInt(v: PyValue | undefined, what: string): number {
  if (typeof v === "number" && Number.isSafeInteger(v)) return v;
  if (typeof v === "bigint" && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) {
    return Number(v);
  }
  corrupt(`${what} must be an integer`);
}

function intTuple(v: PyValue | undefined, what: string): number[] {
  if (!isTuple(v)) corrupt(`${what} must be a tuple`);
  return v.map((x) => {
    const n = asInt(x, `${what} element`);
    if (n < 0) corrupt(`${what} has a negative element`);
    return n;
  });
}

/** Apply an allow-listed callable. Pure data construction; nothing runs. */
function reduce(fn: PyGlobal, args: PyValue): PyValue {
  if (!isTuple(args)) corrupt(`REDUCE arguments for ${fn.qualname} are not a tuple`);
  switch (fn.qualname) {
    case "collections.OrderedDict": {
      const d: PyDict = new Map();
      if (args.length === 0) return d;
      if (args.length !== 1 || !Array.isArray(args[0])) corrupt("OrderedDict() takes one list of pairs");
      for (const pair of args[0]) {
        if (!Array.isArray(pair) || pair.length !== 2) corrupt("OrderedDict() items must be pairs");
        d.set(pair[0], pair[1]);
      }
      return d;
    }
    case "torch._utils._rebuild_tensor_v2":
    case "torch._utils._rebuild_tensor_v3": {
      const v3 = fn.name === "_rebuild_tensor_v3";
      if (args.length < (v3 ? 7 : 4) || args.length > (v3 ? 8 : 7)) {
        corrupt(`${fn.name} got ${args.length} arguments`);
      }
      const offset = asInt(args[1], "storage_offset");
      if (offset < 0) corrupt("negative storage_offset");
      const size = intTuple(args[2], "size");
      const stride = intTuple(args[3], "stride");
      if (size.length !== stride.length) corrupt("size and stride differ in length");
      let dtype: PyGlobal | undefined;
      if (v3) {
        const d = args[6];
        if (!(d instanceof PyGlobal) || d.module !== "torch" || !Object.hasOwn(TORCH_DTYPES, d.name)) {
          corrupt("_rebuild_tensor_v3 dtype must be a torch dtype");
        }
        dtype = d;
      }
      return new TorchTensorRef(args[0], offset, size, stride, dtype);
    }
    case "torch._utils._rebuild_parameter":
    case "torch._utils._rebuild_parameter_with_state": {
      if (args.length < 3 || !(args[0] instanceof TorchTensorRef)) corrupt(`${fn.name} needs a tensor`);
      return args[0];
    }
    default:
      throw new UnsafePickleError(`pickle: REDUCE on ${fn.qualname} is not allowed (nothing was called)`);
  }
}

/**
 * Unpickle bytes (protocols 2–5) into inert values. Throws UnsafePickleError for a GLOBAL or opcode
 * outside the allow-list, CorruptFileError for broken streams, UnsupportedError for valid but
 * unhandled features.
 */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions = {}): PyValue {
  const maxMemo = opts.maxMemo ?? 1_000_000;
  const maxStack = opts.maxStack ?? 1_000_000;
  const maxLongBytes = opts.maxLongBytes ?? 64;
  const b = bytes;
  const n = b.length;
  let p = 0;
  const stack: (PyValue | typeof MARK)[] = [];
  const memo = new Map<number, PyValue>();

  const need = (k: number, what: string): void => {
    if (k < 0 || p + k > n) corrupt(`${what} needs ${k} bytes at offset ${p}, only ${n - p} left`);
  };
  const u8 = (): number => {
    need(1, "argument");
    return b[p++];
  };
  const u16 = (): number => {
    need(2, "argument");
    const v = b[p] | (b[p + 1] << 8);
    p += 2;
    return v;
  };
  const u32 = (): number => {
    need(4, "argument");
    const v = (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
    p += 4;
    return v;
  };
  const u64 = (): number => {
    const lo = u32();
    const hi = u32();
    if (hi > 0x1fffff) corrupt("64-bit length too large");
    return hi * 0x100000000 + lo;
  };
  const take = (k: number, what: string): Uint8Array => {
    need(k, what);
    const s = b.subarray(p, p + k);
    p += k;
    return s;
  };
  const line = (what: string): string => {
    const e = b.subarray(p, p + 1025).indexOf(0x0a) + p; // real names are far shorter than 1 KiB
    if (e < p) corrupt(`unterminated ${what}`);
    const s = latin1.decode(b.subarray(p, e));
    p = e + 1;
    return s;
  };
  const push = (v: PyValue | typeof MARK): void => {
    if (stack.length >= maxStack) corrupt(`stack deeper than ${maxStack}`);
    stack.push(v);
  };
  const pop = (what: string): PyValue => {
    const v = stack.pop();
    if (v === undefined) corrupt(`stack underflow at ${what}`);
    if (v === MARK) corrupt(`unexpected MARK at ${what}`);
    return v;
  };
  const top = (what: string): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) corrupt(`no object on the stack for ${what}`);
    return v;
  };
  const popMark = (what: string): PyValue[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) corrupt(`${what} without MARK`);
    const items = stack.splice(i) as PyValue[];
    items.shift();
    return items;
  };
  const str = (raw: Uint8Array): string => {
    try {
      return utf8.decode(raw);
    } catch {
      corrupt("invalid UTF-8 in a string");
    }
  };
  const global = (module: string, name: string): PyGlobal => {
    if (!isAllowedGlobal(module, name)) {
      const shown = `${module} ${name}`;
      const quoted = JSON.stringify(shown.length > 120 ? shown.slice(0, 120) + "…" : shown);
      throw new UnsafePickleError(`pickle: GLOBAL ${quoted} is not allowed (nothing was imported or called)`);
    }
    return new PyGlobal(module, name);
  };
  const memoPut = (idx: number): void => {
    if (!memo.has(idx) && memo.size >= maxMemo) corrupt(`memo larger than ${maxMemo}`);
    memo.set(idx, top("memo put"));
  };
  const memoGet = (idx: number): void => {
    if (!memo.has(idx)) corrupt(`memo key ${idx} was never stored`);
    push(memo.get(idx) as PyValue);
  };
  const setItems = (d: PyValue, items: PyValue[]): void => {
    if (!(d instanceof Map)) corrupt("SETITEM(S) target is not a dict");
    if (items.length % 2) corrupt("SETITEMS with an odd number of items");
    for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
  };
  const appendTo = (l: PyValue, items: PyValue[]): void => {
    if (!Array.isArray(l) || Object.isFrozen(l)) corrupt("APPEND(S) target is not a list");
    for (const it of items) l.push(it);
  };
  const tuple = (items: PyValue[]): PyValue[] => Object.freeze(items) as PyValue[];

  while (p < n) {
    const op = b[p++];
    switch (op) {
      case 0x80: { // PROTO
        const v = u8();
        if (v > 5) throw new UnsupportedError(`pickle protocol ${v} is newer than 5`);
        break;
      }
      case 0x95: { // FRAME: a framing hint only; the length must fit
        const k = u64();
        need(k, "FRAME");
        break;
      }
      case 0x2e: { // STOP
        const v = pop("STOP");
        return v;
      }
      case 0x28: // MARK
        push(MARK);
        break;
      case 0x30: // POP
        if (stack.length === 0) corrupt("stack underflow at POP");
        stack.pop();
        break;
      case 0x31: // POP_MARK
        popMark("POP_MARK");
        break;
      case 0x32: // DUP
        push(top("DUP"));
        break;
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line("GLOBAL module");
        const name = line("GLOBAL name");
        push(global(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop("STACK_GLOBAL");
        const module = pop("STACK_GLOBAL");
        if (typeof module !== "string" || typeof name !== "string") corrupt("STACK_GLOBAL needs two strings");
        push(global(module, name));
        break;
      }
      case 0x71: // BINPUT
        memoPut(u8());
        break;
      case 0x72: // LONG_BINPUT
        memoPut(u32());
        break;
      case 0x94: // MEMOIZE
        memoPut(memo.size);
        break;
      case 0x68: // BINGET
        memoGet(u8());
        break;
      case 0x6a: // LONG_BINGET
        memoGet(u32());
        break;
      case 0x29: // EMPTY_TUPLE
        push(tuple([]));
        break;
      case 0x85: // TUPLE1
        push(tuple([pop("TUPLE1")]));
        break;
      case 0x86: { // TUPLE2
        const y = pop("TUPLE2");
        const x = pop("TUPLE2");
        push(tuple([x, y]));
        break;
      }
      case 0x87: { // TUPLE3
        const z = pop("TUPLE3");
        const y = pop("TUPLE3");
        const x = pop("TUPLE3");
        push(tuple([x, y, z]));
        break;
      }
      case 0x74: // TUPLE
        push(tuple(popMark("TUPLE")));
        break;
      case 0x5d: // EMPTY_LIST
        push([]);
        break;
      case 0x6c: // LIST
        push(popMark("LIST"));
        break;
      case 0x7d: // EMPTY_DICT
        push(new Map());
        break;
      case 0x64: { // DICT
        const d: PyDict = new Map();
        setItems(d, popMark("DICT"));
        push(d);
        break;
      }
      case 0x61: { // APPEND
        const v = pop("APPEND");
        appendTo(top("APPEND"), [v]);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark("APPENDS");
        appendTo(top("APPENDS"), items);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop("SETITEM");
        const k = pop("SETITEM");
        setItems(top("SETITEM"), [k, v]);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark("SETITEMS");
        setItems(top("SETITEMS"), items);
        break;
      }
      case 0x58: // BINUNICODE
        push(str(take(u32(), "BINUNICODE")));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(str(take(u8(), "SHORT_BINUNICODE")));
        break;
      case 0x8d: // BINUNICODE8
        push(str(take(u64(), "BINUNICODE8")));
        break;
      case 0x55: // SHORT_BINSTRING (Python 2 str: bytes, decoded as latin1)
        push(latin1.decode(take(u8(), "SHORT_BINSTRING")));
        break;
      case 0x54: { // BINSTRING
        const k = u32();
        if (k > 0x7fffffff) corrupt("negative BINSTRING length");
        push(latin1.decode(take(k, "BINSTRING")));
        break;
      }
      case 0x43: // SHORT_BINBYTES
        push(take(u8(), "SHORT_BINBYTES").slice());
        break;
      case 0x42: // BINBYTES
        push(take(u32(), "BINBYTES").slice());
        break;
      case 0x8e: // BINBYTES8
        push(take(u64(), "BINBYTES8").slice());
        break;
      case 0x4a: // BININT (signed)
        push(u32() | 0);
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x8a: // LONG1
      case 0x8b: { // LONG4
        const k = op === 0x8a ? u8() : u32();
        if (k > maxLongBytes) {
          throw new UnsupportedError(`pickle: ${k}-byte integer is larger than supported`);
        }
        const raw = take(k, "LONG");
        let v = 0n;
        for (let i = k - 1; i >= 0; i--) v = (v << 8n) | BigInt(raw[i]);
        if (k > 0 && raw[k - 1] & 0x80) v -= 1n << BigInt(8 * k);
        push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x47: { // BINFLOAT (big-endian double)
        const raw = take(8, "BINFLOAT");
        push(new DataView(raw.buffer, raw.byteOffset, 8).getFloat64(0, false));
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop("BINPERSID");
        if (!opts.persistentLoad) {
          throw new UnsupportedError("pickle: persistent id found but no loader was given");
        }
        push(opts.persistentLoad(pid));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop("REDUCE");
        const fn = pop("REDUCE");
        if (!(fn instanceof PyGlobal)) corrupt("REDUCE on a non-callable");
        push(reduce(fn, args));
        break;
      }
      case 0x62: { // BUILD: only OrderedDict state (torch's `_metadata`), which is dropped
        const state = pop("BUILD");
        const target = top("BUILD");
        if (!(target instanceof Map)) corrupt("BUILD on an object other than a dict");
        if (!(state instanceof Map) && !isTuple(state) && state !== null) {
          corrupt("BUILD state is not a dict");
        }
        break;
      }
      default: {
        const name = REFUSED[op];
        if (name) {
          throw new UnsafePickleError(`pickle: opcode ${name} (0x${op.toString(16)}) is not allowed`);
        }
        corrupt(`unknown opcode 0x${op.toString(16)} at offset ${p - 1}`);
      }
    }
  }
  corrupt("stream ended without STOP (truncated?)");
}
