/**
 * A self-contained HTML page rendered from the OpenAPI document (no CDN, no script), served at
 * `/docs`. Mobile teams generate clients from `/openapi.json`; this page is for reading.
 */

type Obj = Record<string, unknown>;

const esc = (s: unknown) => String(s ?? "").replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

function schemaName(s: unknown): string {
  if (!s || typeof s !== "object") return "";
  const o = s as Obj;
  if (typeof o.$ref === "string") {
    const n = o.$ref.split("/").pop()!;
    return `<a href="#schema-${esc(n)}">${esc(n)}</a>`;
  }
  if (o.type === "array") return `${schemaName(o.items)}[]`;
  if (o.type === "object" && o.properties) {
    return `{ ${Object.keys(o.properties as Obj).map(esc).join(", ")} }`;
  }
  const t = Array.isArray(o.type) ? o.type.join("|") : String(o.type ?? "any");
  return esc(o.format ? `${t} (${o.format})` : o.enum ? `${t}: ${(o.enum as unknown[]).join(" | ")}` : t);
}

function propsTable(schema: Obj): string {
  const props = (schema.properties ?? {}) as Record<string, Obj>;
  const req = new Set((schema.required ?? []) as string[]);
  const rows = Object.entries(props).map(([k, v]) =>
    `<tr><td><code>${esc(k)}</code>${req.has(k) ? " *" : ""}</td><td>${schemaName(v)}${
      v.nullable ? " | null" : ""
    }</td><td>${esc(v.description ?? "")}</td></tr>`
  );
  return rows.length
    ? `<table><tr><th>field</th><th>type</th><th>notes</th></tr>${rows.join("")}</table>`
    : "";
}

function curl(method: string, path: string, op: Obj): string {
  const parts = [`curl -X ${method.toUpperCase()} "$API${path.replace(/\{(\w+)\}/g, "$1")}"`];
  if (op.security) parts.push(`-H "Authorization: Bearer $KEY"`);
  const content = ((op.requestBody as Obj | undefined)?.content ?? {}) as Record<string, Obj>;
  const form = content["multipart/form-data"];
  if (form) {
    const ref = ((form.schema as Obj).$ref as string | undefined)?.split("/").pop();
    const files = ref === "CompareForm" ? ["source", "target"] : ["image"];
    for (const f of files) parts.push(`-F ${f}=@${f === "target" ? "b" : "a"}.jpg`);
  } else if (content["application/json"]) {
    parts.push(`-H "Content-Type: application/json" -d '{}'`);
  }
  return parts.join(" \\\n  ");
}

/** Render the docs page for an OpenAPI 3 document. */
export function renderDocsPage(doc: Obj): string {
  const info = (doc.info ?? {}) as Obj;
  const paths = (doc.paths ?? {}) as Record<string, Record<string, Obj>>;
  const schemas = (((doc.components ?? {}) as Obj).schemas ?? {}) as Record<string, Obj>;
  const ops: string[] = [], toc: string[] = [];
  for (const [path, item] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(item)) {
      const anchor = `${method}-${path}`.replace(/[^A-Za-z0-9]+/g, "-");
      toc.push(
        `<li><a href="#${anchor}"><code>${method.toUpperCase()} ${esc(path)}</code></a> ${
          esc(op.summary)
        }</li>`,
      );
      const params = ((op.parameters ?? []) as Obj[]).map((p) =>
        `<tr><td><code>${esc(p.name)}</code>${p.required ? " *" : ""}</td><td>${esc(p.in)}</td><td>${
          schemaName(p.schema)
        }</td><td>${esc(p.description ?? (p.schema as Obj | undefined)?.description ?? "")}</td></tr>`
      );
      const body = op.requestBody as Obj | undefined;
      const bodyHtml = body
        ? `<h4>Body</h4><p>${esc(body.description ?? "")}</p><ul>${
          Object.entries((body.content ?? {}) as Record<string, Obj>).map(([ct, v]) =>
            `<li><code>${esc(ct)}</code>: ${schemaName(v.schema)}</li>`
          ).join("")
        }</ul>`
        : "";
      const responses = Object.entries((op.responses ?? {}) as Record<string, Obj>).map(([code, r]) => {
        const s = ((r.content as Obj | undefined)?.["application/json"] as Obj | undefined)?.schema;
        return `<tr><td>${esc(code)}</td><td>${esc(r.description)}</td><td>${
          s ? schemaName(s) : ""
        }</td></tr>`;
      });
      ops.push(
        `<section id="${anchor}"><h3><span class="m ${esc(method)}">${
          esc(method.toUpperCase())
        }</span> <code>${esc(path)}</code></h3><p>${esc(op.summary)}${
          op.description ? ` — ${esc(op.description)}` : ""
        }${op.security ? " <em>(API key)</em>" : ""}</p>${
          params.length
            ? `<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th>notes</th></tr>${
              params.join("")
            }</table>`
            : ""
        }${bodyHtml}<h4>Responses</h4><table>${responses.join("")}</table><pre>${
          esc(curl(method, path, op))
        }</pre></section>`,
      );
    }
  }
  const schemaHtml = Object.entries(schemas).map(([n, s]) =>
    `<section id="schema-${esc(n)}"><h3>${esc(n)}</h3>${propsTable(s)}</section>`
  );
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(info.title)} — API docs</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:0 auto;padding:1rem;color:#222}
code,pre{font-family:ui-monospace,monospace;font-size:13px}pre{background:#f4f4f4;padding:.6rem;overflow:auto}
table{border-collapse:collapse;margin:.3rem 0}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}
section{border-top:1px solid #eee;padding-top:.5rem}.m{padding:0 .4rem;border-radius:3px;color:#fff;font-size:13px}
.get{background:#2b6cb0}.post{background:#2f855a}.put{background:#b7791f}.delete{background:#c53030}
</style></head><body>
<h1>${esc(info.title)} <small>${esc(info.version)}</small></h1>
<p>${esc(info.description)}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI ${esc(doc.openapi)}). In the examples,
<code>API</code> is the base URL and <code>KEY</code> your API key.</p>
<h2>Endpoints</h2><ul>${toc.join("")}</ul>
${ops.join("\n")}
<h2>Schemas</h2>
${schemaHtml.join("\n")}
</body></html>`;
}
