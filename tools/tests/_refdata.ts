/** Reference cases made by the official RepMLP code (fixtures/refdata, see its README): loader used by several tests. */
import { readPth } from "../../runtime/src/io/pth.ts";
import { readNpz } from "../../runtime/src/io/npy.ts";
import { f32 } from "../../runtime/src/tensor.ts";

/** Folder of the reference cases, vendored in the repo so a plain clone tests itself. */
export const REFDATA = new URL("./fixtures/refdata/", import.meta.url);

/** Load one shared case (input, expected outputs, checkpoints). */
export function loadCase(name: string) {
  const dir = new URL(`${name}/`, REFDATA);
  const read = (f: string) => Deno.readFileSync(new URL(f, dir));
  const cj = JSON.parse(new TextDecoder().decode(read("case.json")));
  const bin = (f: string) => {
    const b = read(f);
    return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  };
  return {
    name,
    cls: cj.class as string,
    kwargs: cj.constructor_kwargs as Record<string, unknown>,
    input: f32(cj.input.shape, bin("input.bin").slice()),
    outTrain: bin("out_train.bin"),
    outDeploy: bin("out_deploy.bin"),
    train: readPth(read("train.pth")),
    deploy: readPth(read("deploy.pth")),
    deployNpz: readNpz(read("deploy.npz")),
    dir,
  };
}

export const CASES: string[] = [...Deno.readDirSync(REFDATA)].filter((e) => e.isDirectory).map((e) => e.name)
  .sort();
