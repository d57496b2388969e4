/**
 * deno task eval:agree <student bundle> <teacher bundle> --crops DIR [--teacher-crops DIR]
 *
 * Student-vs-teacher cosine on face crops (files used as they are, resized to each model's input),
 * e.g. held-out synthetic faces or the real-face check set. --teacher-crops: the same faces cut on
 * the teacher's own template (matched by file name).
 */
import { InvalidArgumentError } from "../../runtime/src/errors.ts";
import { agreementOnFiles, openEmbedModel } from "../eval/mod.ts";
import { listImages } from "../train/distill.ts";
import { main, parseCli } from "./_cli.ts";

const USAGE =
  "usage: deno task eval:agree <student bundle> <teacher bundle> --crops DIR [--teacher-crops DIR]";

await main(async () => {
  const { values: v, positionals: p } = parseCli(USAGE, {
    crops: { type: "string" },
    "teacher-crops": { type: "string" },
  });
  if (p.length !== 2 || !v.crops) {
    throw new InvalidArgumentError("two bundles and --crops are required", USAGE);
  }
  const files = await listImages(v.crops);
  const tdir = v["teacher-crops"];
  const tfiles = tdir ? files.map((f) => tdir + f.slice(v.crops!.length)) : files;
  const [student, teacher] = [await openEmbedModel(p[0]), await openEmbedModel(p[1])];
  try {
    const a = await agreementOnFiles(student, files, teacher, tfiles);
    console.log(
      `agree    ${p[0]} vs ${p[1]} on ${a.n} faces (${v.crops}${tdir ? `; teacher: ${tdir}` : ""})\n` +
        `cosine   mean ${a.mean.toFixed(4)}, min ${a.min.toFixed(4)}; a constant output ${
          a.constant.toFixed(4)
        }; centred ${a.centred.toFixed(4)} (a constant: ≈ 0)`,
    );
  } finally {
    await student.dispose();
    await teacher.dispose();
  }
});
