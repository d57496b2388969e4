/**
 * How closely a student's embeddings follow its teacher's on face crops neither saw in training:
 * cosine per face, the score a constant output (the mean teacher embedding) would reach, and the
 * cosine after centring both on that mean (a constant scores 0), so a student that only learned
 * the teacher's common component is visible as such (its centred cosine is near 0).
 */
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import { embedFiles, type EmbedModel } from "./embed.ts";

/** Agreement summary over n faces (embeddings L2-normalised). */
export interface Agreement {
  n: number;
  mean: number;
  min: number;
  /** Mean cosine of the constant output (the normalised mean teacher embedding of these faces). */
  constant: number;
  /** Mean cosine after subtracting that mean from both sides (a constant output scores ≈ 0). */
  centred: number;
}

/** Agreement of row-aligned, L2-normalised embeddings `s` (student) and `t` (teacher), both n × dim. */
export function agreement(s: Float32Array, t: Float32Array, dim: number): Agreement {
  const n = t.length / dim;
  if (!Number.isInteger(n) || n < 1 || s.length !== t.length) {
    throw new InvalidArgumentError(`agreement: ${s.length} vs ${t.length} values for dim ${dim}`);
  }
  const mu = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let d = 0; d < dim; d++) mu[d] += t[i * dim + d] / n;
  const cos = (a: ArrayLike<number>, b: ArrayLike<number>, ca?: Float64Array) => {
    let ab = 0, aa = 0, bb = 0;
    for (let d = 0; d < dim; d++) {
      const x = a[d] - (ca ? ca[d] : 0), y = b[d] - (ca ? ca[d] : 0);
      ab += x * y, aa += x * x, bb += y * y;
    }
    return ab / Math.sqrt(Math.max(aa * bb, 1e-24));
  };
  let mean = 0, min = 1, constant = 0, centred = 0;
  for (let i = 0; i < n; i++) {
    const si = s.subarray(i * dim, (i + 1) * dim), ti = t.subarray(i * dim, (i + 1) * dim);
    const c = cos(si, ti);
    mean += c / n, min = Math.min(min, c);
    constant += cos(mu, ti) / n;
    centred += cos(si, ti, mu) / n;
  }
  return { n, mean, min, constant, centred };
}

/** Embed the same faces with both models (each from its own crop file, matched by position) and compare. */
export async function agreementOnFiles(
  student: EmbedModel,
  studentFiles: string[],
  teacher: EmbedModel,
  teacherFiles: string[],
): Promise<Agreement> {
  if (studentFiles.length !== teacherFiles.length || studentFiles.length === 0) {
    throw new InvalidArgumentError(
      `need the same faces for both models, got ${studentFiles.length} and ${teacherFiles.length} files`,
    );
  }
  const s = await embedFiles(studentFiles, student, { align: "none" });
  const t = await embedFiles(teacherFiles, teacher, { align: "none" });
  if (s.dim !== t.dim) throw new InvalidArgumentError(`embedding sizes differ: ${s.dim} vs ${t.dim}`);
  return agreement(s.emb, t.emb, t.dim);
}
