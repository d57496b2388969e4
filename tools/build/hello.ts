/**
 * A hello-world Hono app built like the edge targets (same esbuild settings, same layout), the
 * baseline `deno task bench:edge` starts side by side with the face API: what the runtime itself costs.
 */
import { join } from "node:path";
import { bundleJs, stopEsbuild, T0_MODULE } from "./bundle_js.ts";

const APP = `import ${JSON.stringify(T0_MODULE)};
import { Hono } from "hono";
const app = new Hono();
app.get("/", (c) => c.text("hello"));
export default app;`;

/** Build `<out>/deno/server.mjs` and `<out>/cloudflare/worker/worker.mjs`. */
export async function buildHello(out: string): Promise<{ deno: string; cloudflare: string }> {
  const deno = join(out, "deno"), cloudflare = join(out, "cloudflare");
  await Deno.mkdir(join(cloudflare, "worker"), { recursive: true });
  await Deno.mkdir(deno, { recursive: true });
  try {
    await bundleJs(APP, join(deno, "server.mjs"), ["deno", "worker", "browser", "import", "default"], {
      minify: true,
      external: [],
    });
    await bundleJs(
      APP,
      join(cloudflare, "worker", "worker.mjs"),
      ["workerd", "worker", "browser", "import"],
      {
        minify: true,
        external: [],
      },
    );
  } finally {
    await stopEsbuild();
  }
  return { deno, cloudflare };
}
