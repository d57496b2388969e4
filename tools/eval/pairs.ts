/**
 * Verification pair lists: LFW's `pairs.txt` and a simple CSV.
 *
 * LFW (Huang et al. 2007): a header `<folds> <n>` (or just `<n>` for the one-fold View 1 files),
 * then per fold `n` matched lines `name i j` followed by `n` mismatched lines `name1 i name2 j`;
 * image `i` of `name` is `<dir>/<name>/<name>_<iiii>.jpg`. CSV: `path_a,path_b,same[,fold]` with an
 * optional header line; `same` is 1/0, true/false, yes/no or same/different; paths are relative
 * to the images folder unless absolute.
 */
import { CorruptFileError } from "../../runtime/src/errors.ts";

/** One pair to verify. */
export interface Pair {
  a: string;
  b: string;
  same: boolean;
  /** 0-based fold. */
  fold: number;
}

const bad = (file: string, line: number, msg: string, hint?: string) =>
  new CorruptFileError(`${file}:${line}: ${msg}`, { hint });

/** Path of image `n` (1-based) of `name` in the LFW layout. */
export function lfwImagePath(dir: string, name: string, n: number): string {
  return `${dir}/${name}/${name}_${String(n).padStart(4, "0")}.jpg`;
}

const posInt = (t: string) => /^[0-9]+$/.test(t) && Number(t) > 0 ? Number(t) : NaN;

/** Parse an LFW `pairs.txt`. */
export function parseLfwPairs(text: string, dir: string, file = "pairs.txt"): Pair[] {
  const lines = text.split(/\r?\n/).map((l, i) => ({ t: l.trim().split(/\s+/), no: i + 1 }))
    .filter((l) => l.t[0] !== "");
  if (!lines.length) throw bad(file, 1, "empty pairs file");
  const head = lines[0].t.map(posInt);
  if (!(head.length === 1 || head.length === 2) || head.some(Number.isNaN)) {
    throw bad(
      file,
      lines[0].no,
      `header must be '<folds> <pairs per fold and class>', got '${lines[0].t.join(" ")}'`,
    );
  }
  const [folds, n] = head.length === 2 ? head : [1, head[0]];
  const need = folds * 2 * n;
  if (lines.length - 1 !== need) {
    throw bad(
      file,
      lines[lines.length - 1].no,
      `header promises ${folds} × (${n} matched + ${n} mismatched) = ${need} pairs, found ${
        lines.length - 1
      } lines`,
    );
  }
  const out: Pair[] = [];
  for (let k = 0; k < need; k++) {
    const { t, no } = lines[k + 1];
    const fold = Math.floor(k / (2 * n)), same = k % (2 * n) < n;
    if (same) {
      const [i, j] = [posInt(t[1]), posInt(t[2])];
      if (t.length !== 3 || Number.isNaN(i) || Number.isNaN(j)) {
        throw bad(file, no, `matched pair must be 'name i j', got '${t.join(" ")}'`);
      }
      out.push({ a: lfwImagePath(dir, t[0], i), b: lfwImagePath(dir, t[0], j), same, fold });
    } else {
      const [i, j] = [posInt(t[1]), posInt(t[3])];
      if (t.length !== 4 || Number.isNaN(i) || Number.isNaN(j)) {
        throw bad(file, no, `mismatched pair must be 'name1 i name2 j', got '${t.join(" ")}'`);
      }
      out.push({ a: lfwImagePath(dir, t[0], i), b: lfwImagePath(dir, t[2], j), same, fold });
    }
  }
  return out;
}

const TRUE = new Set(["1", "true", "yes", "same", "y"]),
  FALSE = new Set(["0", "false", "no", "different", "n"]);

/**
 * Parse a CSV pair list. Without a fold column, pairs are spread over `folds` folds (at most one
 * per pair), genuine and impostor pairs round-robin separately so every fold gets both kinds.
 */
export function parseCsvPairs(text: string, dir: string, folds = 10, file = "pairs.csv"): Pair[] {
  const rows = text.split(/\r?\n/).map((l, i) => ({ c: l.split(",").map((s) => s.trim()), no: i + 1 }))
    .filter((r) => r.c.join("") !== "" && !r.c[0].startsWith("#"));
  if (rows.length && /^path/i.test(rows[0].c[0])) rows.shift();
  if (!rows.length) throw bad(file, 1, "no pairs", "lines are path_a,path_b,same[,fold]");
  const abs = (p: string) => p.startsWith("/") ? p : `${dir}/${p}`;
  const out: Pair[] = [];
  let explicit: boolean | null = null;
  for (const { c, no } of rows) {
    if (c.length < 3 || c.length > 4 || !c[0] || !c[1]) {
      throw bad(file, no, `expected path_a,path_b,same[,fold], got ${c.length} fields`);
    }
    const s = c[2].toLowerCase();
    if (!TRUE.has(s) && !FALSE.has(s)) {
      throw bad(file, no, `'same' must be 1/0 (or true/false), got '${c[2]}'`);
    }
    const hasFold = c.length === 4;
    if (explicit !== null && explicit !== hasFold) {
      throw bad(file, no, "give a fold on every line or on none");
    }
    explicit = hasFold;
    const f = hasFold ? Number(c[3]) : 0;
    if (hasFold && !(Number.isInteger(f) && f >= 0)) {
      throw bad(file, no, `fold must be an integer ≥ 0, got '${c[3]}'`);
    }
    out.push({ a: abs(c[0]), b: abs(c[1]), same: TRUE.has(s), fold: f });
  }
  if (!explicit) {
    const k = Math.max(1, Math.min(folds, out.length));
    let p = 0, q = 0;
    for (const r of out) r.fold = r.same ? p++ % k : (k - 1 - (q++ % k));
  } else {
    // Renumber used folds 0..k−1 so gaps in the file do not make empty folds.
    const used = [...new Set(out.map((r) => r.fold))].sort((a, b) => a - b);
    for (const r of out) r.fold = used.indexOf(r.fold);
  }
  return out;
}

/** Pick the parser from the file name (`.csv` → CSV, otherwise LFW). */
export function parsePairs(text: string, file: string, dir: string, folds = 10): Pair[] {
  return /\.csv$/i.test(file) ? parseCsvPairs(text, dir, folds, file) : parseLfwPairs(text, dir, file);
}
