/// <reference lib="dom" />
/**
 * The playground page's script (browser only). It is bundled at build time by
 * `deno task build:playground` into `client_bundle.ts` (a string the page inlines under its CSP
 * nonce); `tools/tests/playground_bundle.test.ts` checks that the committed bundle is up to date.
 * Calls only the public `/v1` API with the key the user pastes in.
 */

/** A model as listed by `GET /v1/models`. */
interface ModelInfo {
  name: string;
  task: "face" | "classifier";
  default?: boolean;
  dtype?: string;
  backend?: string;
}

/** What the page shows about a request. */
interface Meta {
  method: string;
  path: string;
  status: number;
  ms: number;
  model?: string;
  timing?: string | null;
  requestId?: string | null;
  retryAfter?: string | null;
}

/** The API's own `{code, message}`, or a synthetic one for client / network failures. */
interface ApiErr {
  code: string;
  message: string;
}

/** An error carrying the API error and request metadata. */
class PlaygroundError extends Error {
  constructor(readonly api: ApiErr, readonly meta?: Meta) {
    super(api.message);
  }
}

// deno-lint-ignore no-explicit-any
type Json = any; // response bodies as the API documents them (see /openapi.json)
type Reply = { json: Json; meta: Meta };
type Kind = "face" | "classifier";

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;
const KEY_STORE = "repmlp-edge.apiKey";
const models: Record<Kind, ModelInfo[]> = { face: [], classifier: [] };
const captured: Record<string, Blob> = {}; // file-input id -> Blob taken with the camera (overrides the input's file)
const keyInput = $<HTMLInputElement>("api-key"), remember = $<HTMLInputElement>("remember");

// The key lives in memory, or in sessionStorage (this tab only) when the user asks; never localStorage.
try {
  const saved = sessionStorage.getItem(KEY_STORE);
  if (saved) {
    keyInput.value = saved;
    remember.checked = true;
  }
} catch { /* storage disabled */ }
function persistKey(): void {
  try {
    if (remember.checked && keyInput.value) sessionStorage.setItem(KEY_STORE, keyInput.value);
    else sessionStorage.removeItem(KEY_STORE);
  } catch { /* storage disabled */ }
}
keyInput.addEventListener("change", persistKey);
remember.addEventListener("change", persistKey);
$("forget").addEventListener("click", () => {
  keyInput.value = "";
  remember.checked = false;
  persistKey();
  keyInput.focus();
});

const ms = (v: number) => Math.round(v * 10) / 10 + " ms";
function parseTiming(h: string | null | undefined): string {
  if (!h) return "";
  return h.split(",").map((part) => {
    const [name, ...attrs] = part.trim().split(";");
    let dur: number | null = null, desc: string | null = null;
    for (const b of attrs) {
      const [k, ...rest] = b.trim().split("=");
      const v = rest.join("=").replace(/^"|"$/g, "");
      if (k === "dur") dur = parseFloat(v);
      else if (k === "desc") desc = v;
    }
    return name + (dur !== null && isFinite(dur) ? " " + ms(dur) : "") + (desc ? " (" + desc + ")" : "");
  }).join(" · ");
}
const findModel = (name: string) => [...models.face, ...models.classifier].find((m) => m.name === name);
const selectedModel = (kind: Kind) =>
  $<HTMLSelectElement>(kind === "face" ? "face-model" : "cls-model").value;

/**
 * One fetch helper: adds the key and ?model=, parses JSON, and turns every failure into the API's
 * own {code, message} (or a synthetic one for network / non-JSON failures).
 */
async function api(method: string, path: string, body?: FormData | Record<string, unknown>, kind?: Kind) {
  const url = new URL(path, document.baseURI);
  const model = kind ? selectedModel(kind) : "";
  if (model) url.searchParams.set("model", model);
  const headers: Record<string, string> = {};
  const key = keyInput.value.trim();
  if (key) headers.Authorization = "Bearer " + key;
  let payload: BodyInit | undefined;
  if (body instanceof FormData) payload = body;
  else if (body) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const t0 = performance.now();
  let res: Response;
  try {
    res = await fetch(url, { method, headers, body: payload });
  } catch (e) {
    const message = "request failed before a response: " + String((e as Error)?.message ?? e);
    throw new PlaygroundError({ code: "network_error", message }, {
      method,
      path: url.pathname,
      status: 0,
      ms: performance.now() - t0,
    });
  }
  const text = await res.text();
  let json: Json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch { /* not JSON */ }
  const meta: Meta = {
    method,
    path: url.pathname,
    status: res.status,
    model: json?.model || model,
    timing: res.headers.get("server-timing"),
    requestId: res.headers.get("x-request-id"),
    retryAfter: res.headers.get("retry-after"),
    ms: performance.now() - t0,
  };
  if (!res.ok) {
    const err: ApiErr = json?.error ??
      { code: "http_" + res.status, message: (text || res.statusText || "").slice(0, 300) };
    throw new PlaygroundError(err, meta);
  }
  return { json, meta } as Reply;
}

function showMeta(el: HTMLElement, meta: Meta): void {
  el.textContent = "";
  const m = meta.model ? findModel(meta.model) : undefined;
  const parts: [string, string][] = [["", meta.method + " " + meta.path + " → " + meta.status]];
  if (meta.model) parts.push(["model", meta.model]);
  if (m?.dtype) parts.push(["dtype", m.dtype]);
  if (m?.backend) parts.push(["backend", m.backend]);
  parts.push(["server", parseTiming(meta.timing) || "no Server-Timing"]);
  parts.push(["round trip", ms(meta.ms)]);
  if (meta.requestId) parts.push(["request", meta.requestId]);
  parts.forEach(([label, value], i) => {
    if (i) el.appendChild(document.createTextNode(" · "));
    if (label) {
      const b = document.createElement("b");
      b.textContent = label + ": ";
      el.appendChild(b);
    }
    el.appendChild(document.createTextNode(value));
  });
}
function showError(el: HTMLElement, metaEl: HTMLElement, e: unknown): void {
  const pe = e instanceof PlaygroundError ? e : undefined;
  const a = pe?.api ?? { code: "client_error", message: String((e as Error)?.message ?? e) };
  const extra = pe?.meta?.retryAfter ? " (retry after " + pe.meta.retryAfter + " s)" : "";
  el.textContent = (pe?.meta?.status ? "HTTP " + pe.meta.status + " · " : "") + a.code + ": " + a.message +
    extra;
  if (pe?.meta?.status) showMeta(metaEl, pe.meta);
  else metaEl.textContent = "";
}
/** Run an action from a button: busy state, clears old output, reports errors where the user looks. */
function action(btn: HTMLButtonElement, section: HTMLElement, fn: () => Promise<Reply | undefined>): void {
  const errEl = section.querySelector<HTMLElement>(".error")!,
    metaEl = section.querySelector<HTMLElement>(".meta")!;
  btn.addEventListener("click", async () => {
    errEl.textContent = "";
    btn.disabled = true;
    section.setAttribute("aria-busy", "true");
    try {
      const r = await fn();
      if (r?.meta) showMeta(metaEl, r.meta);
    } catch (e) {
      showError(errEl, metaEl, e);
    }
    btn.disabled = false;
    section.removeAttribute("aria-busy");
  });
}
const clientError = (code: string, message: string) => new PlaygroundError({ code, message });
function imageOf(id: string, what: string): Blob {
  if (captured[id]) return captured[id];
  const f = $<HTMLInputElement>(id).files?.[0];
  if (!f) throw clientError("missing_image", "choose or capture " + what + " first");
  return f;
}
/** A meter bar; cosine similarity lies in [-1, 1] (lo = -1) and the bar shows its positive part. */
function bar(value: number, lo: number): HTMLElement {
  const wrap = document.createElement("div");
  wrap.className = "bar";
  wrap.setAttribute("role", "meter");
  wrap.setAttribute("aria-valuemin", String(lo));
  wrap.setAttribute("aria-valuemax", "1");
  wrap.setAttribute("aria-valuenow", String(value));
  const fill = document.createElement("span");
  fill.style.width = (Math.max(0, Math.min(1, value)) * 100).toFixed(1) + "%";
  wrap.appendChild(fill);
  return wrap;
}
const fixed = (v: unknown) => typeof v === "number" ? v.toFixed(4) : String(v);
function optNumber(id: string, fd: FormData, field: string): void {
  const v = $<HTMLInputElement>(id).value.trim();
  if (v !== "") fd.append(field, v);
}

/** A face box as the API reports it (upright-image pixels). */
interface FaceBox {
  box: { x: number; y: number; width: number; height: number };
  index?: number;
}
/**
 * Outline faces on a preview. The preview is `object-fit: cover` and shown upright (the browser applies
 * EXIF like the server), so image pixels map through the cover scale and the centring offset.
 */
function drawFaces(id: string, faces: (FaceBox | null | undefined)[]): void {
  const img = document.querySelector<HTMLImageElement>('img[data-preview-for="' + id + '"]');
  const cv = document.querySelector<HTMLCanvasElement>('canvas[data-boxes-for="' + id + '"]');
  const note = document.querySelector<HTMLElement>('[data-faces-for="' + id + '"]');
  if (!img || !cv) return;
  const W = img.clientWidth, H = img.clientHeight, dpr = globalThis.devicePixelRatio || 1;
  cv.width = Math.round(W * dpr);
  cv.height = Math.round(H * dpr);
  const g = cv.getContext("2d");
  if (!g) return;
  g.clearRect(0, 0, cv.width, cv.height);
  const list = faces.filter((f): f is FaceBox => !!f);
  if (note) {
    note.textContent = faces.length && !list.length
      ? ""
      : list.length
      ? list.length + " face(s) outlined"
      : "";
  }
  if (!list.length || !img.naturalWidth) return;
  const k = Math.max(W / img.naturalWidth, H / img.naturalHeight);
  const ox = (W - img.naturalWidth * k) / 2, oy = (H - img.naturalHeight * k) / 2;
  g.scale(dpr, dpr);
  g.lineWidth = 2;
  g.font = "bold 11px system-ui, sans-serif";
  for (const f of list) {
    const x = ox + f.box.x * k, y = oy + f.box.y * k;
    g.strokeStyle = "#ffd400";
    g.strokeRect(x, y, f.box.width * k, f.box.height * k);
    if (f.index !== undefined) {
      g.fillStyle = "#ffd400";
      g.fillText(String(f.index), x + 3, y + 12);
    }
  }
}

// Image pickers: preview + camera.
function preview(id: string, blob: Blob | undefined): void {
  const img = document.querySelector<HTMLImageElement>('img[data-preview-for="' + id + '"]');
  if (!img) return;
  drawFaces(id, []);
  if (img.src) URL.revokeObjectURL(img.src);
  if (blob) img.src = URL.createObjectURL(blob);
  else img.removeAttribute("src");
}
const captureNote = (id: string) => document.querySelector<HTMLElement>('[data-captured-for="' + id + '"]');
document.querySelectorAll<HTMLInputElement>("input[type=file]").forEach((input) => {
  input.addEventListener("change", () => {
    delete captured[input.id];
    preview(input.id, input.files?.[0]);
    const note = captureNote(input.id);
    if (note) note.textContent = "";
  });
});

const dialog = $<HTMLDialogElement>("camera"), video = $<HTMLVideoElement>("camera-video");
let camTarget: string | null = null, stream: MediaStream | null = null, camOpener: HTMLElement | null = null;
const canCamera = !!navigator.mediaDevices?.getUserMedia && typeof dialog.showModal === "function";
document.querySelectorAll<HTMLButtonElement>("button[data-camera-for]").forEach((b) => {
  if (!canCamera) return; // insecure context or old browser: file upload only
  b.hidden = false;
  b.addEventListener("click", () => {
    camTarget = b.getAttribute("data-camera-for");
    camOpener = b;
    $("camera-error").textContent = "";
    navigator.mediaDevices.getUserMedia({
      video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 640 } },
      audio: false,
    }).then((s) => {
      stream = s;
      video.srcObject = s;
      dialog.showModal();
      $("camera-shoot").focus();
    }, (e: Error) => {
      $("camera-error").textContent = "camera unavailable: " + (e.name || "") + " " + (e.message || "");
      dialog.showModal();
    });
  });
});
function stopCamera(): void {
  stream?.getTracks().forEach((t) => t.stop());
  stream = null;
  video.srcObject = null;
}
dialog.addEventListener("close", () => {
  stopCamera();
  camOpener?.focus();
});
$("camera-cancel").addEventListener("click", () => dialog.close());
$("camera-shoot").addEventListener("click", () => {
  if (!stream || !video.videoWidth) return;
  const c = document.createElement("canvas");
  c.width = video.videoWidth;
  c.height = video.videoHeight;
  c.getContext("2d")!.drawImage(video, 0, 0);
  const target = camTarget!;
  c.toBlob(
    (blob) => {
      if (!blob) return;
      captured[target] = blob;
      $<HTMLInputElement>(target).value = "";
      preview(target, blob);
      const note = captureNote(target);
      if (note) note.textContent = "camera photo (" + Math.round(blob.size / 1024) + " KB)";
      dialog.close();
    },
    "image/jpeg",
    0.92,
  );
});

// Models.
function fillSelect(sel: HTMLSelectElement, list: ModelInfo[], empty: string): void {
  const prev = sel.value;
  sel.textContent = "";
  if (!list.length) {
    const o = document.createElement("option");
    o.value = "";
    o.textContent = empty;
    sel.appendChild(o);
  }
  for (const m of list) {
    const o = document.createElement("option");
    o.value = m.name;
    o.textContent = m.name + " (" + [m.dtype, m.backend].filter(Boolean).join(", ") + ")";
    sel.appendChild(o);
  }
  const def = list.find((m) => m.default);
  if (prev && list.some((m) => m.name === prev)) sel.value = prev;
  else if (def) sel.value = def.name;
}
async function loadModels(): Promise<Reply> {
  const r = await api("GET", "v1/models");
  const list: ModelInfo[] = Array.isArray(r.json) ? r.json : (r.json?.models || r.json?.data) || [];
  models.face = list.filter((m) => m.task === "face");
  models.classifier = list.filter((m) => m.task === "classifier");
  fillSelect($<HTMLSelectElement>("face-model"), models.face, "no face model loaded");
  fillSelect($<HTMLSelectElement>("cls-model"), models.classifier, "no classifier loaded");
  $("models-status").textContent = models.face.length + " face model(s), " + models.classifier.length +
    " classifier(s) loaded";
  return r;
}
action($<HTMLButtonElement>("connect"), $("setup"), () => {
  persistKey();
  return loadModels();
});

// Compare.
action($<HTMLButtonElement>("compare"), $("sec-compare"), async () => {
  const fd = new FormData();
  fd.append("source", imageOf("image-a", "image A"));
  fd.append("target", imageOf("image-b", "image B"));
  optNumber("compare-threshold", fd, "threshold");
  const sim = $("similarity"), verdict = $("verdict"), thr = $("compare-thr-out"), barEl = $("compare-bar");
  sim.textContent = "…";
  verdict.textContent = "";
  verdict.className = "verdict";
  thr.textContent = "";
  try {
    const r = await api("POST", "v1/faces/compare", fd, "face");
    const j = r.json;
    sim.textContent = fixed(j.similarity);
    verdict.textContent = j.match ? "match" : "no match";
    verdict.className = "verdict " + (j.match ? "yes" : "no");
    thr.textContent = "threshold " + fixed(j.threshold);
    drawFaces("image-a", [j.face]);
    drawFaces("image-b", [j.targetFace]);
    barEl.textContent = "";
    barEl.appendChild(bar(j.similarity, -1));
    return r;
  } catch (e) {
    sim.textContent = "–";
    throw e;
  }
});

function collection(): string {
  const id = $<HTMLInputElement>("collection").value.trim();
  if (!id) throw clientError("missing_collection", "enter a collection id first");
  return "v1/collections/" + encodeURIComponent(id);
}

// Enrol: creates the collection on first use (PUT is create-if-absent).
action($<HTMLButtonElement>("enroll"), $("sec-enroll"), async () => {
  const base = collection();
  const image = imageOf("enroll-image", "an image to enrol");
  const name = $<HTMLInputElement>("enroll-name").value.trim();
  if (!name) throw clientError("missing_name", "enter a name for this face");
  const fd = new FormData();
  fd.append("image", image);
  fd.append("externalId", name);
  optNumber("enroll-max", fd, "maxFaces");
  const out = $("enroll-result");
  out.textContent = "…";
  const model = selectedModel("face");
  try {
    await api("PUT", base, model ? { model } : {});
    const r = await api("POST", base + "/faces", fd, "face");
    const faces: { faceId: string; face: FaceBox | null }[] = r.json.faces || [];
    out.textContent = "enrolled “" + name + "” as " + faces.map((f) => f.faceId).join(", ");
    drawFaces("enroll-image", faces.map((f) => f.face));
    return r;
  } catch (e) {
    out.textContent = "";
    throw e;
  }
});

// Find faces: what the server detects in the image to enrol (index = the `face` field's value).
action($<HTMLButtonElement>("detect"), $("sec-enroll"), async () => {
  const fd = new FormData();
  fd.append("image", imageOf("enroll-image", "an image"));
  const r = await api("POST", "v1/faces/detect", fd);
  const faces: FaceBox[] = (r.json.faces || []).map((f: FaceBox, i: number) => ({ ...f, index: i }));
  drawFaces("enroll-image", faces);
  $("enroll-result").textContent = faces.length +
    " face(s) found, largest first; “Faces” enrols the N largest";
  return r;
});

/** One result row: name, number, bar and an optional id line. */
function resultRow(name: string, value: number, lo: number, id?: string): HTMLLIElement {
  const li = document.createElement("li");
  const n = document.createElement("span");
  n.className = "name";
  n.textContent = name;
  const v = document.createElement("span");
  v.className = "num";
  v.textContent = fixed(value);
  li.append(n, v, bar(value, lo));
  if (id !== undefined) {
    const s = document.createElement("span");
    s.className = "id";
    s.textContent = id;
    li.appendChild(s);
  }
  return li;
}

// Search.
action($<HTMLButtonElement>("search"), $("sec-search"), async () => {
  const base = collection();
  const fd = new FormData();
  fd.append("image", imageOf("search-image", "an image to search with"));
  optNumber("search-k", fd, "k");
  optNumber("search-threshold", fd, "threshold");
  const list = $("matches"), summary = $("search-summary");
  list.textContent = "";
  summary.textContent = "…";
  try {
    const r = await api("POST", base + "/search", fd, "face");
    const matches: { faceId: string; externalId: string | null; similarity: number }[] = r.json?.matches ||
      [];
    summary.textContent = (matches.length ? matches.length + " match(es)" : "no matches") + " at threshold " +
      fixed(r.json.threshold) + " among " + r.json.searchedFaces + " face(s)";
    drawFaces("search-image", [r.json.face]);
    for (const m of matches) {
      list.appendChild(resultRow(m.externalId || "(no name)", m.similarity, -1, m.faceId));
    }
    return r;
  } catch (e) {
    summary.textContent = "";
    throw e;
  }
});

// Classify.
action($<HTMLButtonElement>("classify"), $("sec-classify"), async () => {
  const fd = new FormData();
  fd.append("image", imageOf("classify-image", "an image to classify"));
  optNumber("classify-k", fd, "k");
  const list = $("labels");
  list.textContent = "";
  const r = await api("POST", "v1/classify", fd, "classifier");
  const preds: { label: string; probability: number }[] = r.json?.predictions || [];
  for (const p of preds) list.appendChild(resultRow(p.label, p.probability, 0));
  return r;
});

if (keyInput.value) {
  loadModels().catch((e) =>
    showError(
      $("setup").querySelector<HTMLElement>(".error")!,
      $("setup").querySelector<HTMLElement>(".meta")!,
      e,
    )
  );
}
