/** deno task inspect <bundle> — architecture, dtypes, tensor table, sizes, hash status. */
import { IntegrityError, InvalidArgumentError } from "../../runtime/src/errors.ts";
import { readFileBytes } from "../../runtime/src/io/files.ts";
import { loadBundle } from "../../runtime/src/deploy_model.ts";
import { paramSpecs } from "../../runtime/src/arch/ir.ts";
import { dtypeBytes, numel } from "../../runtime/src/tensor.ts";
import { fmtBytes, main, parseCli } from "./_cli.ts";

const USAGE = "usage: deno task inspect <bundle.safetensors> [--json]";

await main(async () => {
  const { values, positionals } = parseCli(USAGE, { json: { type: "boolean" } });
  if (positionals.length !== 1) throw new InvalidArgumentError("give exactly one bundle path", USAGE);
  const bytes = await readFileBytes(positionals[0]);
  let m;
  try {
    m = await loadBundle(bytes);
  } catch (e) {
    if (e instanceof IntegrityError) {
      console.error("hash     MISMATCH: the file was modified after conversion");
    }
    throw e;
  }
  const rows = [...m.raw].map(([k, t]) => ({
    key: k,
    dtype: t.dtype,
    shape: t.shape,
    bytes: numel(t.shape) * dtypeBytes(t.dtype),
  }));
  if (values.json) {
    console.log(
      JSON.stringify(
        {
          model: {
            arch: m.desc.arch,
            kwargs: m.desc.kwargs,
            input: m.desc.input,
            any_hw: m.desc.anyHW ?? false,
          },
          dtype: m.dtype,
          meta: m.meta,
          sha256: m.sha256,
          file_bytes: bytes.length,
          tensors: rows,
        },
        null,
        2,
      ),
    );
    return;
  }
  const params = paramSpecs(m.desc.root, "deploy").reduce(
    (a, s) => a + (s.dtype === "float32" ? numel(s.shape) : 0),
    0,
  );
  console.log(`file     ${positionals[0]} (${fmtBytes(bytes.length)})`);
  console.log(`hash     sha256 ${m.sha256} — verified`);
  console.log(`model    ${m.desc.arch}(${JSON.stringify(m.desc.kwargs)})`);
  const any = m.desc.anyHW ? " by default; any H×W whose stage maps divide into the hs×ws partitions" : "";
  console.log(`input    (N, ${m.desc.input.map((d) => d ?? "any").join(", ")})${any}`);
  console.log(`dtype    ${m.dtype}; ${params.toLocaleString("en")} parameters`);
  console.log(`meta     ${JSON.stringify(m.meta)}`);
  const w = Math.max(...rows.map((r) => r.key.length), 6);
  console.log(`\n${"tensor".padEnd(w)}  dtype     shape               bytes`);
  for (const r of rows) {
    console.log(
      `${r.key.padEnd(w)}  ${r.dtype.padEnd(8)}  ${`[${r.shape.join(", ")}]`.padEnd(18)}  ${
        fmtBytes(r.bytes)
      }`,
    );
  }
  const by: Record<string, number> = {};
  for (const r of rows) by[r.dtype] = (by[r.dtype] ?? 0) + r.bytes;
  console.log(`\ntotal    ${Object.entries(by).map(([d, b]) => `${d} ${fmtBytes(b)}`).join(", ")}`);
});
