/**
 * Infer constructor kwargs from checkpoint keys and shapes, so `--arch` alone often suffices and
 * user-given kwargs are cross-checked against the file. Only what the shapes determine uniquely is
 * inferred; partition sizes are inferred only when h·w is a perfect square (h = w assumed).
 */
import { ArchMismatchError } from "../errors.ts";
import type { StateDict } from "../tensor.ts";
import { type Kw, PRESETS } from "./registry.ts";

function shape(sd: StateDict, k: string): number[] | undefined {
  return sd.get(k)?.shape;
}

function convKs(sd: StateDict, prefix: string): number[] {
  const ks = new Set<number>();
  const re = new RegExp(`^${prefix.replace(/\./g, "\\.")}repconv(\\d+)\\.conv\\.weight$`);
  for (const k of sd.keys()) {
    const m = k.match(re);
    if (m) ks.add(Number(m[1]));
  }
  return [...ks].sort((a, b) => a - b);
}

function sqrtInt(n: number): number | undefined {
  const r = Math.round(Math.sqrt(n));
  return r * r === n ? r : undefined;
}

/** RepMLPBlock kwargs from keys under `p` (e.g. "stages.0.0.repmlp_block."). */
function inferBlock(sd: StateDict, p: string): Kw {
  const kw: Kw = {};
  const f1 = shape(sd, `${p}gp.fc1.weight`);
  const f3 = shape(sd, `${p}fc3.weight`);
  if (f1) {
    kw.in_channels = kw.out_channels = f1[1];
    kw.globalperceptron_reduce = f1[1] / f1[0];
  }
  if (f3) {
    const hw = f3[1];
    kw.num_sharesets = f3[0] / hw;
    const s = sqrtInt(hw);
    if (s) kw.h = kw.w = s;
  }
  // Deploy checkpoints no longer say which branches were folded in.
  const ks = convKs(sd, p);
  if (sd.has(`${p}fc3_bn.weight`)) kw.reparam_conv_k = ks.length ? ks : null;
  return kw;
}

function inferRepMLP21(sd: StateDict, p: string): Kw {
  const kw: Kw = {};
  const ks = convKs(sd, p);
  const f3 = shape(sd, `${p}fc3.weight`);
  const avg = shape(sd, `${p}avg.bn.weight`);
  if (avg) kw.in_channels = avg[0];
  if (ks.length) {
    const c = shape(sd, `${p}repconv${ks[0]}.conv.weight`)!;
    kw.out_channels = c[0];
    if (avg) kw.fc3_groups = avg[0] / c[1];
  }
  if (f3 && sd.has(`${p}fc3_bn.weight`)) kw.reparam_conv_k = ks.length ? ks : null;
  const fc1 = shape(sd, `${p}fc1_fc2.fc1.weight`);
  if (fc1) kw.fc1_fc2_reduction = fc1[1] / fc1[0];
  return kw;
}

function inferNet(sd: StateDict): Kw {
  const kw: Kw = {};
  const emb = shape(sd, "conv_embedding.conv.weight");
  if (emb) {
    kw.in_channels = emb[1];
    kw.patch_size = [emb[2], emb[3]];
  }
  const head = shape(sd, "head.weight");
  if (head) kw.num_class = head[0];
  const blocks: number[] = [];
  for (const k of sd.keys()) {
    const m = k.match(/^stages\.(\d+)\.(\d+)\./);
    if (m) blocks[Number(m[1])] = Math.max(blocks[Number(m[1])] ?? 0, Number(m[2]) + 1);
  }
  if (blocks.length) {
    kw.num_blocks = blocks;
    const per = blocks.map((_, i) => inferBlock(sd, `stages.${i}.0.repmlp_block.`));
    kw.channels = per.map((b) => b.in_channels);
    kw.sharesets_nums = per.map((b) => b.num_sharesets);
    if (per.every((b) => b.h !== undefined)) {
      kw.hs = per.map((b) => b.h);
      kw.ws = per.map((b) => b.w);
    }
    if ("reparam_conv_k" in per[0]) kw.reparam_conv_k = per[0].reparam_conv_k;
    kw.globalperceptron_reduce = per[0].globalperceptron_reduce;
  }
  return kw;
}

/** Kwargs the checkpoint determines for an official class (empty for unknown/kit archs). */
export function inferKwargs(arch: string, sd: StateDict): Kw {
  switch (PRESETS[arch]?.arch ?? arch) {
    case "RepMLPBlock":
      return inferBlock(sd, "");
    case "RepMLPNetUnit": {
      const b = inferBlock(sd, "repmlp_block.");
      const f1 = shape(sd, "ffn_block.ffn_fc1.conv.weight");
      const kw: Kw = { ...b, channels: b.in_channels };
      delete kw.in_channels;
      delete kw.out_channels;
      if (f1) kw.ffn_expand = f1[0] / f1[1];
      return kw;
    }
    case "RepMLP":
      return inferRepMLP21(sd, "");
    case "RepMLPNet":
      return inferNet(sd);
    default:
      return {};
  }
}

function same(a: unknown, b: unknown): boolean {
  const norm = (v: unknown) => JSON.stringify(Array.isArray(v) && v.length === 0 ? null : v);
  // A square pair [k, k] and the int k mean the same patch size.
  if (Array.isArray(a) && typeof b === "number") return a.length === 2 && a[0] === b && a[1] === b;
  if (Array.isArray(b) && typeof a === "number") return same(b, a);
  return norm(a) === norm(b);
}

/**
 * Merge user kwargs with those inferred from the checkpoint. A user value that contradicts the
 * file is an ArchMismatchError; inferred values fill what the user left out (presets' own kwargs
 * are checked as if the user gave them).
 */
export function resolveKwargs(arch: string, user: Kw, sd: StateDict): Kw {
  const inferred = inferKwargs(arch, sd);
  const given = { ...(PRESETS[arch]?.kwargs ?? {}), ...user };
  const conflicts: string[] = [];
  for (const [k, v] of Object.entries(inferred)) {
    if (k in given && !same(given[k], v)) {
      conflicts.push(`${k}: given ${JSON.stringify(given[k])}, checkpoint says ${JSON.stringify(v)}`);
    }
  }
  if (conflicts.length) {
    throw new ArchMismatchError(
      `checkpoint does not fit ${arch} with these kwargs:\n  ${conflicts.join("\n  ")}`,
      "fix --kwargs (or omit the contradicting ones: they are inferred from the checkpoint)",
    );
  }
  const out: Kw = { ...user };
  for (const [k, v] of Object.entries(inferred)) if (!(k in given)) out[k] = v;
  return out;
}
