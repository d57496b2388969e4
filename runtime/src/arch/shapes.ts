/**
 * Which input sizes a description accepts, found by walking the layer tree with the feature-map
 * size — the rule the official forwards apply:
 *
 * - RepMLPNet blocks (`repmlpnet.py`) take the partition count from the input at run time
 *   (`x.reshape(N, C, H/h, h, W/w, w)`), so each block's map only has to divide into its h×w
 *   partitions: a RepMLPNet trained at 224 with hs = (56, 28, 14, 7) runs at 448 with 2×2
 *   partitions per stage. The fold depends on h×w only, so one folded model serves every such size.
 * - The 2021 RepMLP (`repmlp.py`) fixes H×W at construction (`h_parts`, `w_parts`; its global
 *   perceptron's fc1 has C·(H/h)·(W/w) inputs), so it accepts exactly that size.
 * - Strided convs (patch embedding, 2×2 stage embeddings) floor, as `nn.Conv2d` does.
 */
import { InputSizeError } from "../errors.ts";
import { type Layer, type ModelDesc, outShape } from "./ir.ts";

/** Why an input size does not fit one layer. */
export interface SizeProblem {
  /** State_dict prefix of the layer ("" for a bare block). */
  layer: string;
  /**
   * The map does not divide into partitions, differs from a fixed size, vanishes in a conv, or
   * (only when asked for exact sizes) loses trailing rows/columns in a strided conv.
   */
  kind: "partition" | "fixed" | "empty" | "crop";
  /** Axes that fail. */
  axes: ("H" | "W")[];
  /** Feature map [H, W] reaching the layer. */
  map: [number, number];
  /** Partition [h, w] ("partition"), required [H, W] ("fixed"), kernel extent ("empty"), stride ("crop"). */
  want: [number, number];
}

type Shape = number[];

function problem(
  l: { name: string },
  kind: SizeProblem["kind"],
  s: Shape,
  got: [number, number],
  want: [number, number],
  bad: (g: number, w: number) => boolean,
): SizeProblem | null {
  const axes = (["H", "W"] as const).filter((_, i) => bad(got[i], want[i]));
  return axes.length ? { layer: l.name, kind, axes, map: [s[1], s[2]], want } : null;
}

/**
 * Propagate (C, H, W) through `l`, collecting problems; returns the output shape (null once a map
 * vanished). `exact` also reports strided convs that drop trailing rows/columns ("crop").
 */
function visit(l: Layer, s: Shape, out: SizeProblem[], exact: boolean): Shape | null {
  let p: SizeProblem | null = null;
  switch (l.kind) {
    case "seq": {
      let cur: Shape | null = s;
      for (const c of l.layers) {
        cur = visit(c, cur, out, exact);
        if (!cur) return null;
      }
      return cur;
    }
    case "residual":
      if (l.shortcut && !visit(l.shortcut, s, out, exact)) return null;
      return visit(l.body, s, out, exact);
    case "conv":
    case "convbn": {
      const o = outShape(l, s);
      const k = l.k - 2 * l.pad;
      p = problem(l, "empty", s, [o[1], o[2]], [k, k], (g) => g < 1);
      if (p) {
        out.push(p);
        return null;
      }
      const drop = (g: number) => (g + 2 * l.pad - l.k) % l.stride !== 0;
      p = exact ? problem(l, "crop", s, [s[1], s[2]], [l.stride, l.stride], drop) : null;
      if (p) out.push(p);
      return o;
    }
    case "repmlpnet_block":
      p = problem(l, "partition", s, [s[1], s[2]], [l.h, l.w], (g, w) => g % w !== 0);
      break;
    case "repmlp21":
      p = problem(l, "fixed", s, [s[1], s[2]], [l.H, l.W], (g, w) => g !== w);
      break;
  }
  if (p) out.push(p);
  return outShape(l, s);
}

/**
 * Every reason why input H×W does not fit the tree `root` with C input channels (empty when it
 * fits). `exact` also rejects sizes a strided conv crops (the official forward accepts them).
 */
export function layerSizeProblems(
  root: Layer,
  C: number,
  H: number,
  W: number,
  exact = false,
): SizeProblem[] {
  const out: SizeProblem[] = [];
  visit(root, [C, H, W], out, exact);
  return out;
}

/** Every reason why input H×W does not fit `desc` (empty when it fits). */
export function sizeProblems(desc: ModelDesc, H: number, W: number): SizeProblem[] {
  return layerSizeProblems(desc.root, desc.input[0], H, W);
}

/**
 * Whether the model takes more than one input size: bare RepMLPNet blocks/units (no natural size)
 * and RepMLPNet (whose `input` H/W is then only the default).
 */
export function acceptsAnyHW(desc: ModelDesc): boolean {
  return desc.input[1] === null || desc.input[2] === null || desc.anyHW === true;
}

/**
 * The first size on `axis`, walking from `from` upwards (`dir` 1) or downwards (−1), that fits
 * `root` without any strided conv cropping it (224, not 227, for a patch-4 net); null when none
 * within 4096 steps (bounded work for hostile sizes).
 */
export function nearestValid(
  root: Layer,
  C: number,
  axis: "H" | "W",
  from: number,
  dir: 1 | -1,
): number | null {
  // Axes are independent (square kernels, per-axis partition checks): test c×c, look at one axis.
  const end = dir > 0 ? from + 4096 : Math.max(1, from - 4096);
  for (let c = Math.max(1, from); dir > 0 ? c <= end : c >= end; c += dir) {
    if (!layerSizeProblems(root, C, c, c, true).some((p) => p.axes.includes(axis))) return c;
  }
  return null;
}

/** RepMLPNet stage index of a layer prefix (`stages.<i>.<j>.…`), else null. */
function stageOf(layer: string): number | null {
  const m = /(?:^|\.)stages\.(\d+)\.\d+(?:\.|$)/.exec(layer);
  return m ? Number(m[1]) : null;
}

const hw = (v: [number, number]) => `${v[0]}×${v[1]}`;

function message(desc: ModelDesc, H: number, W: number, p: SizeProblem, stage: number | null): string {
  const where = stage !== null ? `stage ${stage} (${p.layer})` : p.layer ? `layer ${p.layer}` : "the block";
  const head = `${desc.arch}: input ${H}×${W} does not fit: ${where}`;
  switch (p.kind) {
    case "partition": {
      const kw = stage !== null && desc.arch === "RepMLPNet" ? ` (hs[${stage}]×ws[${stage}])` : " (h×w)";
      return `${head} gets a ${hw(p.map)} feature map, which is not divisible into its ${
        hw(p.want)
      } partitions${kw}`;
    }
    case "fixed":
      return `${head} takes a fixed ${hw(p.want)} map (a 2021 RepMLP's H, W are constructor arguments), ` +
        `got ${hw(p.map)}`;
    case "empty":
      return `${desc.arch}: input ${H}×${W} is too small: ${where} gets a ${hw(p.map)} map, ` +
        `smaller than its kernel ${hw(p.want)}`;
    case "crop":
      return `${head} drops trailing rows/columns of its ${hw(p.map)} map (stride ${p.want[0]})`;
  }
}

/**
 * Throw an {@link InputSizeError} naming the layer (RepMLPNet: the stage) and its partition when
 * input H×W does not fit `desc`, with the nearest sizes that fit.
 */
export function checkInputHW(desc: ModelDesc, H: number, W: number): void {
  const ps = sizeProblems(desc, H, W);
  if (!ps.length) return;
  const p = ps[0], stage = stageOf(p.layer);
  const suggestions: [number, number][] = [];
  let hint: string;
  if (acceptsAnyHW(desc)) {
    const C = desc.input[0];
    // Per axis on its own (a map that vanished on one axis stops the walk before the other's blocks).
    const bad = (a: "H" | "W") => {
      const v = a === "H" ? H : W;
      return layerSizeProblems(desc.root, C, v, v).some((q) => q.axes.includes(a));
    };
    const near = (a: "H" | "W", v: number, dir: 1 | -1) => bad(a) ? nearestValid(desc.root, C, a, v, dir) : v;
    for (const dir of [-1, 1] as const) {
      const h = near("H", H, dir), w = near("W", W, dir);
      if (h !== null && w !== null && !suggestions.some((s) => s[0] === h && s[1] === w)) {
        suggestions.push([h, w]);
      }
    }
    hint = (suggestions.length ? `nearest sizes that fit: ${suggestions.map(hw).join(" or ")}; ` : "") +
      "every RepMLPNet block's feature map must be a multiple of its h×w partition";
  } else {
    hint = `this model takes input ${desc.input[1]}×${desc.input[2]} only`;
  }
  throw new InputSizeError(
    message(desc, H, W, p, stage),
    { layer: p.layer, stage, map: p.map, want: p.want },
    suggestions,
    hint,
  );
}
