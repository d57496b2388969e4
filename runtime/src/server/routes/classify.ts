/** `POST /v1/classify`: top-k labels of a classifier bundle. */
import { setMetric } from "hono/timing";
import type { App, ServerDeps } from "../context.ts";
import { ClassifyFields, routes } from "../contract.ts";
import { ApiError } from "../api_errors.ts";
import { prepare, readInput } from "../input.ts";

function softmax(logits: Float32Array): Float64Array {
  let m = -Infinity;
  for (const v of logits) m = Math.max(m, v);
  const p = Float64Array.from(logits, (v) => Math.exp(v - m));
  const s = p.reduce((a, b) => a + b, 0);
  return p.map((v) => v / s);
}

/** Register the classify route on `app`. */
export function classifyRoutes(app: App, d: ServerDeps): void {
  app.openapi(routes.classify, async (c) => {
    const { images, fields } = await readInput(c, ["image"], ClassifyFields);
    if (!d.classifiers.length) throw new ApiError("not_found", "this server has no classifier loaded");
    const m = fields.model === undefined
      ? d.classifiers[0]
      : d.classifiers.find((x) => x.name === fields.model);
    if (!m) {
      throw new ApiError(
        "invalid_request",
        `unknown classifier '${fields.model}'; GET /v1/models lists them`,
      );
    }
    const t0 = performance.now();
    const x = await prepare(images[0], m, d.maxPixels);
    const t1 = performance.now();
    setMetric(c, "decode", t1 - t0);
    const logits = await m.classify(x, 1);
    setMetric(c, "infer", performance.now() - t1, `${m.name} ${m.backend}`);
    const p = softmax(logits);
    const order = [...p.keys()].sort((a, b) => p[b] - p[a]).slice(
      0,
      Math.min(fields.k ?? 5, m.labels.length),
    );
    return c.json({
      model: m.name,
      predictions: order.map((i) => ({ label: m.labels[i], index: i, probability: p[i] })),
    }, 200);
  });
}
