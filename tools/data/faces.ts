/**
 * Procedural synthetic-identity faces: aligned 96×96 RGB crops for tests and the demo face model.
 * Each identity (seeded by its index) fixes geometry and colours — face shape, skin, hair style and
 * colour, eye spacing/size/colour, brows, nose, mouth, optional glasses/beard. Each sample adds pose
 * (small rotation, shift, scale), directional light, contrast/brightness, background and noise.
 * Nothing here is a real person; models trained on it are "synthetic-identity demo" models.
 */
import { rng } from "../../runtime/src/random.ts";
import type { ImageSet } from "./fashion_mnist.ts";

/** Per-identity parameters (all in face-local units: the face half-height is 1). */
export interface Identity {
  skin: [number, number, number];
  hair: [number, number, number];
  eye: [number, number, number];
  bg: [number, number, number];
  faceW: number;
  faceH: number;
  jaw: number;
  hairline: number;
  hairSide: number;
  eyeDx: number;
  eyeY: number;
  eyeR: number;
  browTilt: number;
  browThick: number;
  noseLen: number;
  noseW: number;
  mouthY: number;
  mouthW: number;
  smile: number;
  lip: [number, number, number];
  glasses: boolean;
  beard: boolean;
  cheek: number;
}

/** Draw the parameters of identity `id` (deterministic for a given seed). */
export function identity(id: number, seed = 0): Identity {
  const r = rng((id + 1) * 2654435761 + seed * 97);
  const u = (a: number, b: number) => a + (b - a) * r();
  const tone = u(0.25, 0.95);
  const skin: [number, number, number] = [
    0.35 + 0.6 * tone,
    0.22 + 0.55 * tone * u(0.85, 1),
    0.15 + 0.45 * tone * u(0.7, 1),
  ];
  const hd = u(0.05, 0.9);
  const hair: [number, number, number] = r() < 0.15
    ? [u(0.6, 0.95), u(0.6, 0.9), u(0.55, 0.85)] // grey/blond
    : [hd * u(0.6, 1), hd * u(0.4, 0.8), hd * u(0.2, 0.6)];
  return {
    skin,
    hair,
    eye: [u(0.1, 0.5), u(0.2, 0.6), u(0.1, 0.7)],
    bg: [u(0.2, 0.9), u(0.2, 0.9), u(0.2, 0.9)],
    faceW: u(0.62, 0.85),
    faceH: u(0.95, 1.1),
    jaw: u(0.0, 0.35),
    hairline: u(-0.75, -0.35),
    hairSide: u(0.0, 0.25),
    eyeDx: u(0.24, 0.36),
    eyeY: u(-0.22, -0.08),
    eyeR: u(0.07, 0.12),
    browTilt: u(-0.25, 0.25),
    browThick: u(0.025, 0.06),
    noseLen: u(0.18, 0.34),
    noseW: u(0.06, 0.14),
    mouthY: u(0.42, 0.6),
    mouthW: u(0.18, 0.34),
    smile: u(-0.08, 0.12),
    lip: [u(0.5, 0.85), u(0.15, 0.4), u(0.15, 0.4)],
    glasses: r() < 0.2,
    beard: r() < 0.2,
    cheek: u(0, 0.15),
  };
}

const smooth = (d: number, aa: number) => Math.min(1, Math.max(0, 0.5 - d / aa)); // coverage of d<0

function mix(c: number[], col: readonly number[], a: number) {
  if (a <= 0) return;
  for (let i = 0; i < 3; i++) c[i] += (col[i] - c[i]) * a;
}

/** Distance from p to segment ab. */
function segDist(px: number, py: number, ax: number, ay: number, bx: number, by: number): number {
  const vx = bx - ax, vy = by - ay;
  const t = Math.max(0, Math.min(1, ((px - ax) * vx + (py - ay) * vy) / (vx * vx + vy * vy)));
  return Math.hypot(px - ax - t * vx, py - ay - t * vy);
}

/** Render one sample of an identity into `out` (3·S·S, CHW, uint8). */
export function renderFace(id: Identity, sampleSeed: number, S: number, out: Uint8Array, off = 0): void {
  const r = rng(sampleSeed);
  const u = (a: number, b: number) => a + (b - a) * r();
  const rot = u(-0.12, 0.12), scale = u(0.92, 1.08), tx = u(-0.06, 0.06), ty = u(-0.06, 0.06);
  const lightA = u(0, 2 * Math.PI), lightK = u(0, 0.35), bright = u(0.85, 1.15), contrast = u(0.85, 1.15);
  const noise = u(0.01, 0.05);
  const bg = id.bg.map((v) => Math.min(1, Math.max(0, v + u(-0.15, 0.15))));
  const expr = u(-0.05, 0.05); // expression: mouth curvature jitter
  const blink = r() < 0.1 ? 0.35 : 1;
  const cr = Math.cos(rot), sr = Math.sin(rot);
  const aa = 2.4 / (S * 0.42 * scale); // ~1 pixel in face units
  const c = [0, 0, 0];
  const lx = Math.cos(lightA), ly = Math.sin(lightA);
  for (let py = 0; py < S; py++) {
    for (let px = 0; px < S; px++) {
      // Pixel → face-local coords: centre of the crop, face half-height ≈ 0.42·S.
      const X0 = (px + 0.5) / S - 0.5 - tx, Y0 = (py + 0.5) / S - 0.5 - ty;
      const X = (cr * X0 + sr * Y0) / (0.42 * scale), Y = (-sr * X0 + cr * Y0) / (0.42 * scale);
      c[0] = bg[0], c[1] = bg[1], c[2] = bg[2];
      // Hair mass behind the head.
      const hairD = Math.hypot(X / (id.faceW + id.hairSide + 0.08), (Y + 0.15) / (id.faceH + 0.12)) - 1;
      if (Y < 0.35 + id.hairSide) mix(c, id.hair, smooth(hairD, aa));
      // Face: ellipse, narrower towards the jaw.
      const wY = id.faceW * (Y > 0 ? 1 - id.jaw * Y * Y : 1);
      const faceD = Math.hypot(X / wY, Y / id.faceH) - 1;
      const faceA = smooth(faceD, aa);
      if (faceA > 0) {
        const shade = 1 - 0.12 * Math.max(0, Math.hypot(X / wY, Y / id.faceH) - 0.6);
        mix(c, id.skin.map((v) => v * shade), faceA);
        // Cheeks.
        for (const s of [-1, 1]) {
          const d = Math.hypot(X - s * (id.eyeDx + 0.05), Y - 0.22) / 0.16;
          if (d < 1) mix(c, [id.lip[0], id.skin[1] * 0.9, id.skin[2] * 0.9], id.cheek * (1 - d) * faceA);
        }
        // Fringe: hair above the hairline inside the face.
        if (Y < id.hairline + 0.08 * Math.sin(X * 6 + id.hairSide * 20)) mix(c, id.hair, faceA);
        // Beard.
        if (id.beard && Y > id.mouthY - 0.12) {
          mix(c, id.hair.map((v) => v * 0.8), faceA * smooth(-(Y - (id.mouthY - 0.1)), 0.1) * 0.9);
        }
        // Eyes, brows.
        for (const s of [-1, 1]) {
          const ex = s * id.eyeDx, ey = id.eyeY;
          const eD = Math.hypot((X - ex) / (id.eyeR * 1.6), (Y - ey) / (id.eyeR * blink)) - 1;
          const eA = smooth(eD, aa * 2);
          if (eA > 0) {
            mix(c, [0.95, 0.95, 0.92], eA);
            const iD = Math.hypot(X - ex, Y - ey) - id.eyeR * 0.75;
            mix(c, id.eye, smooth(iD, aa) * eA);
            mix(c, [0.05, 0.05, 0.05], smooth(Math.hypot(X - ex, Y - ey) - id.eyeR * 0.32, aa) * eA);
          }
          const bx0 = ex - s * id.eyeR * 1.7, bx1 = ex + s * id.eyeR * 1.7;
          const by = ey - id.eyeR * 1.9;
          const bD = segDist(X, Y, bx0, by + id.browTilt * 0.1, bx1, by - id.browTilt * 0.1) - id.browThick;
          mix(c, id.hair.map((v) => v * 0.7), smooth(bD, aa));
          if (id.glasses) {
            const gD = Math.abs(Math.hypot(X - ex, Y - ey) - id.eyeR * 2.1) - 0.018;
            mix(c, [0.1, 0.1, 0.12], smooth(gD, aa));
          }
        }
        if (id.glasses) {
          const gD = segDist(X, Y, -id.eyeDx + id.eyeR * 2.1, id.eyeY, id.eyeDx - id.eyeR * 2.1, id.eyeY) -
            0.015;
          mix(c, [0.1, 0.1, 0.12], smooth(gD, aa));
        }
        // Nose: a shaded wedge and two nostrils.
        const ny0 = id.eyeY + 0.08, ny1 = ny0 + id.noseLen;
        if (Y > ny0 && Y < ny1) {
          const t = (Y - ny0) / (ny1 - ny0), half = id.noseW * (0.3 + 0.7 * t);
          if (Math.abs(X) < half) mix(c, id.skin.map((v) => v * 0.82), 0.5 * smooth(Math.abs(X) - half, aa));
        }
        for (const s of [-1, 1]) {
          mix(c, [0.25, 0.15, 0.12], 0.8 * smooth(Math.hypot(X - s * id.noseW * 0.6, Y - ny1) - 0.025, aa));
        }
        // Mouth: a curved band.
        const mx = X / id.mouthW;
        if (Math.abs(mx) < 1.1) {
          const curve = id.mouthY - (id.smile + expr) * (1 - mx * mx);
          const mD = Math.max(Math.abs(Y - curve) - 0.035, Math.abs(mx) - 1);
          mix(c, id.lip, smooth(mD, aa));
        }
      }
      // Directional light, contrast/brightness, noise.
      const light = 1 + lightK * (lx * X0 + ly * Y0) * 2;
      for (let ch = 0; ch < 3; ch++) {
        let v = ((c[ch] * light - 0.5) * contrast + 0.5) * bright;
        v += noise * (r() + r() + r() - 1.5);
        out[off + (ch * S + py) * S + px] = Math.max(0, Math.min(255, Math.round(v * 255)));
      }
    }
  }
}

/** Options of {@link syntheticFaceDataset}. */
export interface SyntheticFaceOptions {
  /** Identities in the training split (default 160). */
  trainIdentities?: number;
  /** Held-out identities for verification (default 40). */
  testIdentities?: number;
  /** Images per training identity (default 20) and per test identity (default 10). */
  perTrain?: number;
  perTest?: number;
  /** Image side (default 96). */
  size?: number;
  seed?: number;
}

/** Render `ids` identities × `per` samples as a uint8 set (labels = 0-based local identity index). */
export function renderIdentities(
  first: number,
  ids: number,
  per: number,
  size: number,
  seed: number,
): ImageSet {
  const plane = 3 * size * size;
  const images = new Uint8Array(ids * per * plane);
  const labels = new Int32Array(ids * per);
  for (let i = 0; i < ids; i++) {
    const id = identity(first + i, seed);
    for (let k = 0; k < per; k++) {
      const n = i * per + k;
      renderFace(id, (first + i) * 100003 + k * 7919 + seed * 31 + 1, size, images, n * plane);
      labels[n] = i;
    }
  }
  return {
    images,
    labels,
    n: ids * per,
    c: 3,
    h: size,
    w: size,
    classes: Array.from({ length: ids }, (_, i) => `id${String(first + i).padStart(5, "0")}`),
  };
}

/** Train identities [0, T) and disjoint held-out identities [T, T+V) for verification. */
export function syntheticFaceDataset(o: SyntheticFaceOptions = {}): { train: ImageSet; test: ImageSet } {
  const T = o.trainIdentities ?? 160, V = o.testIdentities ?? 40, size = o.size ?? 96, seed = o.seed ?? 0;
  return {
    train: renderIdentities(0, T, o.perTrain ?? 20, size, seed),
    test: renderIdentities(T, V, o.perTest ?? 10, size, seed),
  };
}
