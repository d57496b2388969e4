/**
 * deno task data:faces --out DIR [--identities N] [--per-identity K] [--size S] [--seed N]
 *
 * Writes a folder-per-identity PNG dataset of procedurally generated synthetic faces
 * (DIR/train/<id>/<k>.png and DIR/test/<id>/<k>.png with disjoint identities), usable with
 * `deno task train --model faces-repmlp --dataset folder:DIR`. No real person is depicted.
 */
import { encode } from "fast-png";
import { renderIdentities } from "../data/faces.ts";
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import { main, parseCli } from "./_cli.ts";

const USAGE = `usage: deno task data:faces --out DIR [--identities 200] [--test-identities 40]
                          [--per-identity 24] [--per-test-identity 10] [--size 96] [--seed 0]`;

await main(async () => {
  const { values } = parseCli(USAGE, {
    out: { type: "string", short: "o" },
    identities: { type: "string", default: "200" },
    "test-identities": { type: "string", default: "40" },
    "per-identity": { type: "string", default: "24" },
    "per-test-identity": { type: "string", default: "10" },
    size: { type: "string", default: "96" },
    seed: { type: "string", default: "0" },
  });
  if (!values.out) throw new InvalidArgumentError("--out DIR is required", USAGE);
  const n = (k: keyof typeof values, min: number) => {
    const v = Number(values[k]);
    if (!Number.isInteger(v) || v < min) throw new InvalidArgumentError(`--${k} must be an integer ≥ ${min}`);
    return v;
  };
  const T = n("identities", 2), V = n("test-identities", 2), K = n("per-identity", 1);
  const KV = n("per-test-identity", 2), S = n("size", 16), seed = Number(values.seed) || 0;
  let files = 0;
  for (const [split, first, ids, per] of [["train", 0, T, K], ["test", T, V, KV]] as const) {
    for (let i = 0; i < ids; i++) {
      // Render one identity at a time to keep memory flat.
      const set = renderIdentities(first + i, 1, per, S, seed);
      const dir = `${values.out}/${split}/${set.classes[0]}`;
      await Deno.mkdir(dir, { recursive: true });
      const plane = S * S;
      for (let k = 0; k < per; k++) {
        const rgb = new Uint8Array(plane * 3);
        for (let p = 0; p < plane; p++) {
          for (let c = 0; c < 3; c++) rgb[p * 3 + c] = set.images[k * 3 * plane + c * plane + p];
        }
        await Deno.writeFile(`${dir}/${k}.png`, encode({ width: S, height: S, data: rgb, channels: 3 }));
        files++;
      }
    }
  }
  console.log(
    `wrote    ${files} PNGs (${S}×${S}) to ${values.out}: train ${T} identities × ${K}, test ${V} held-out × ${KV} ` +
      `(synthetic identities, seed ${seed})`,
  );
});
