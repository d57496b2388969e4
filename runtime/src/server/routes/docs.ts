/**
 * Public and discovery routes: `GET /healthz`, `/openapi.json`, `/docs`, `/` (playground hook) and
 * `GET /v1/models` (behind the key like all of /v1).
 */
import type { App, AppOptions, HonoApp, ServerDeps } from "../context.ts";
import { FORM_SCHEMAS, routes } from "../contract.ts";
import { renderDocsPage } from "../docs_page.ts";
import type { ServedModel } from "../served_model.ts";

const modelInfo = (m: ServedModel) => ({
  name: m.name,
  dtype: m.dtype,
  backend: m.backend,
  inputSize: [...m.inputSize],
});

/** Register the public routes, the OpenAPI document and `options.extraRoutes` on `app`. */
export function docsRoutes(
  app: App,
  d: ServerDeps,
  options: Pick<AppOptions, "version" | "playground" | "extraRoutes">,
): void {
  app.openapi(
    routes.healthz,
    (c) =>
      c.json({
        status: "ok" as const,
        models: d.faceModels.length + d.classifiers.length,
        store: d.store.kind,
      }, 200),
  );

  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    description: "API key from the server's API_KEYS",
  });
  for (const [name, s] of Object.entries(FORM_SCHEMAS)) app.openAPIRegistry.register(name, s);
  const docConfig = {
    openapi: "3.0.3",
    info: {
      title: "repmlp-edge face API",
      version: options.version ?? "0.1.0",
      description: "Face embedding, verification and identification with RepMLP models. " +
        'Errors are always {"error": {"code", "message"}}.',
    },
  };
  app.doc("/openapi.json", docConfig);
  let docsHtml: string | undefined;
  app.get("/docs", (c) => {
    docsHtml ??= renderDocsPage(app.getOpenAPIDocument(docConfig) as unknown as Record<string, unknown>);
    return c.html(docsHtml);
  });
  app.get(
    "/",
    (c) =>
      options.playground
        ? options.playground(c)
        : c.json({ name: "repmlp-edge face API", docs: "/docs", openapi: "/openapi.json" }),
  );
  options.extraRoutes?.(app as unknown as HonoApp);

  app.openapi(routes.models, (c) =>
    c.json({
      models: [
        ...d.faceModels.map((m, i) => ({
          ...modelInfo(m),
          task: "face" as const,
          default: i === 0,
          dim: m.dim,
          threshold: m.threshold,
        })),
        ...d.classifiers.map((m, i) => ({
          ...modelInfo(m),
          task: "classifier" as const,
          default: i === 0,
          labels: m.labels,
        })),
      ],
    }, 200));
}
