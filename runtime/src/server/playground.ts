/**
 * Browser playground served at `/`: a single self-contained page (HTML, CSS and JS held here as
 * strings, so it works on Deno and Cloudflare Workers without file access and without any CDN) that
 * calls the public `/v1` API with a key the user pastes in. Inline code runs under a per-response
 * CSP nonce, so the page needs no `'unsafe-inline'`.
 *
 * Test hooks (`data-testid`): api-key, image-a, image-b, compare, similarity, enroll-image,
 * enroll-name, enroll, search-image, search, matches (plus classify-image, classify, labels).
 */

/** Page stylesheet (inlined into the HTML under the CSP nonce). */
export const PLAYGROUND_CSS = `
:root{color-scheme:light dark;--bg:#f6f7f9;--card:#fff;--fg:#1b1f24;--muted:#5b6470;--line:#d5dae1;
--accent:#0b63ce;--ok:#137333;--bad:#b3261e;--bar:#0b63ce;--barbg:#e3e8ef;--radius:10px}
@media (prefers-color-scheme:dark){:root{--bg:#121417;--card:#1c1f24;--fg:#e8eaed;--muted:#a0a8b3;
--line:#343a42;--accent:#7cb1ff;--ok:#81c995;--bad:#f28b82;--bar:#7cb1ff;--barbg:#2c3138}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
a{color:var(--accent)}
.skip{position:absolute;left:-999px;top:0}.skip:focus{left:8px;top:8px;background:var(--card);padding:6px;z-index:9}
header{padding:16px 16px 0;max-width:1200px;margin:0 auto}
header h1{font-size:1.35rem;margin:0 0 4px}
header p{margin:0;color:var(--muted)}
main{max-width:1200px;margin:0 auto;padding:12px 16px 32px;display:grid;gap:14px;
grid-template-columns:repeat(auto-fit,minmax(min(100%,340px),1fr))}
section{background:var(--card);border:1px solid var(--line);border-radius:var(--radius);padding:14px 16px;min-width:0}
section h2{font-size:1.08rem;margin:0 0 10px}
#setup{grid-column:1/-1}
.row{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-end}
.row>*{min-width:0}
.field{display:flex;flex-direction:column;gap:4px;flex:1 1 160px}
.field.small{flex:0 1 110px}
label,.lbl{font-size:.86rem;color:var(--muted);font-weight:600}
.check{display:flex;align-items:center;gap:6px;font-weight:400;color:var(--fg);flex:0 0 auto}
input[type=text],input[type=password],input[type=number],select{font:inherit;padding:8px 10px;border:1px solid var(--line);
border-radius:8px;background:var(--bg);color:var(--fg);width:100%;min-height:42px}
input[type=file]{font-size:.85rem;max-width:100%;width:100%}
button{font:inherit;font-weight:600;padding:8px 16px;min-height:42px;border-radius:8px;border:1px solid var(--accent);
background:var(--accent);color:#fff;cursor:pointer}
@media (prefers-color-scheme:dark){button{color:#0b1b33}}
button.secondary{background:transparent;color:var(--accent)}
button:disabled{opacity:.55;cursor:progress}
:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.pickers{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,150px),1fr));gap:10px;margin-bottom:10px}
.picker{display:flex;flex-direction:column;gap:6px;border:1px dashed var(--line);border-radius:8px;padding:8px;min-width:0}
.picker .preview{width:100%;max-width:160px;aspect-ratio:1;object-fit:cover;border-radius:6px;background:var(--barbg);display:block}
.picker .preview:not([src]){visibility:hidden;height:0;aspect-ratio:auto}
.picker button{padding:4px 10px;min-height:36px;font-size:.85rem;align-self:flex-start}
.out{margin-top:12px;min-height:1.5em}
.big{font-size:1.6rem;font-weight:700;font-variant-numeric:tabular-nums}
.verdict{font-weight:700;margin-left:8px}.verdict.yes{color:var(--ok)}.verdict.no{color:var(--bad)}
.bar{height:10px;background:var(--barbg);border-radius:5px;overflow:hidden;margin:4px 0}
.bar>span{display:block;height:100%;width:0;background:var(--bar);border-radius:5px;transition:width .25s}
ol.list{list-style:none;margin:8px 0 0;padding:0;display:flex;flex-direction:column;gap:8px}
ol.list li{display:grid;grid-template-columns:1fr auto;gap:0 8px;align-items:baseline}
ol.list li .bar{grid-column:1/-1}
ol.list .name{font-weight:600;overflow-wrap:anywhere}
ol.list .id{grid-column:1/-1;font-size:.75rem;color:var(--muted);overflow-wrap:anywhere}
.num{font-variant-numeric:tabular-nums}
.meta{font-size:.8rem;color:var(--muted);margin:8px 0 0;overflow-wrap:anywhere}
.meta b{color:var(--fg);font-weight:600}
.error{color:var(--bad);font-weight:600;margin:8px 0 0;overflow-wrap:anywhere}
.error:empty,.meta:empty{display:none}
.hint{font-size:.82rem;color:var(--muted);margin:6px 0 0}
dialog{border:1px solid var(--line);border-radius:var(--radius);background:var(--card);color:var(--fg);padding:12px;
width:min(96vw,560px)}
dialog::backdrop{background:rgba(0,0,0,.55)}
dialog video{width:100%;border-radius:6px;background:#000;display:block}
dialog .row{margin-top:10px;justify-content:flex-end}
.gap-top{margin-top:10px}.gap-bottom{margin-bottom:10px}
#h-camera{margin-top:0;font-size:1.05rem}
footer{max-width:1200px;margin:0 auto;padding:0 16px 24px;color:var(--muted);font-size:.85rem}
`;

/** Page script (plain ES2020, no dependencies; inlined into the HTML under the CSP nonce). */
export const PLAYGROUND_JS = String.raw`
"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var KEY_STORE = "repmlp-edge.apiKey";
  var models = { face: [], classifier: [] };
  var captured = {}; // file-input id -> Blob taken with the camera (overrides the input's file)
  var keyInput = $("api-key"), remember = $("remember");

  // The key lives in memory, or in sessionStorage (this tab only) when the user asks; never localStorage.
  try {
    var saved = sessionStorage.getItem(KEY_STORE);
    if (saved) { keyInput.value = saved; remember.checked = true; }
  } catch (e) { /* storage disabled */ }
  function persistKey() {
    try {
      if (remember.checked && keyInput.value) sessionStorage.setItem(KEY_STORE, keyInput.value);
      else sessionStorage.removeItem(KEY_STORE);
    } catch (e) { /* storage disabled */ }
  }
  keyInput.addEventListener("change", persistKey);
  remember.addEventListener("change", persistKey);
  $("forget").addEventListener("click", function () {
    keyInput.value = ""; remember.checked = false; persistKey(); keyInput.focus();
  });

  function ms(v) { return (Math.round(v * 10) / 10) + " ms"; }
  function parseTiming(h) {
    if (!h) return "";
    return h.split(",").map(function (part) {
      var bits = part.trim().split(";"), name = bits[0], dur = null, desc = null;
      bits.slice(1).forEach(function (b) {
        var kv = b.trim().split("="), k = kv[0], v = kv.slice(1).join("=").replace(/^"|"$/g, "");
        if (k === "dur") dur = parseFloat(v); else if (k === "desc") desc = v;
      });
      return name + (dur !== null && isFinite(dur) ? " " + ms(dur) : "") + (desc ? " (" + desc + ")" : "");
    }).join(" · ");
  }
  function findModel(name) {
    return models.face.concat(models.classifier).filter(function (m) { return m.name === name; })[0];
  }
  function selectedModel(kind) { var s = $(kind === "face" ? "face-model" : "cls-model"); return s.value; }

  // One fetch helper: adds the key and ?model=, parses JSON, and turns every failure into the
  // API's own {code, message} (or a synthetic one for network / non-JSON failures).
  function api(method, path, body, kind) {
    var url = new URL(path, document.baseURI);
    var model = kind ? selectedModel(kind) : "";
    if (model) url.searchParams.set("model", model);
    var headers = {};
    var key = keyInput.value.trim();
    if (key) headers.Authorization = "Bearer " + key;
    if (body && !(body instanceof FormData)) { headers["Content-Type"] = "application/json"; body = JSON.stringify(body); }
    var t0 = performance.now();
    return fetch(url, { method: method, headers: headers, body: body }).then(function (res) {
      return res.text().then(function (text) {
        var json = null;
        try { json = text ? JSON.parse(text) : null; } catch (e) { /* not JSON */ }
        var meta = {
          method: method, path: url.pathname, status: res.status, model: (json && json.model) || model,
          timing: res.headers.get("server-timing"), requestId: res.headers.get("x-request-id"),
          retryAfter: res.headers.get("retry-after"), ms: performance.now() - t0,
        };
        if (!res.ok) {
          var err = json && json.error ? json.error
            : { code: "http_" + res.status, message: (text || res.statusText || "").slice(0, 300) };
          var e = new Error(err.message); e.api = err; e.meta = meta; throw e;
        }
        return { json: json, meta: meta };
      });
    }, function (e) {
      var err = new Error(String(e && e.message || e));
      err.api = { code: "network_error", message: "request failed before a response: " + err.message };
      err.meta = { method: method, path: url.pathname, status: 0, ms: performance.now() - t0 };
      throw err;
    });
  }

  function showMeta(el, meta) {
    el.textContent = "";
    var m = meta.model ? findModel(meta.model) : null;
    var parts = [["", meta.method + " " + meta.path + " → " + meta.status]];
    if (meta.model) parts.push(["model", meta.model]);
    if (m && m.dtype) parts.push(["dtype", m.dtype]);
    if (m && m.backend) parts.push(["backend", m.backend]);
    var t = parseTiming(meta.timing);
    parts.push(["server", t || "no Server-Timing"]);
    parts.push(["round trip", ms(meta.ms)]);
    if (meta.requestId) parts.push(["request", meta.requestId]);
    parts.forEach(function (p, i) {
      if (i) el.appendChild(document.createTextNode(" · "));
      if (p[0]) { var b = document.createElement("b"); b.textContent = p[0] + ": "; el.appendChild(b); }
      el.appendChild(document.createTextNode(p[1]));
    });
  }
  function showError(el, metaEl, e) {
    var a = e.api || { code: "client_error", message: String(e.message || e) };
    var extra = e.meta && e.meta.retryAfter ? " (retry after " + e.meta.retryAfter + " s)" : "";
    el.textContent = (e.meta && e.meta.status ? "HTTP " + e.meta.status + " · " : "") + a.code + ": " + a.message + extra;
    if (e.meta && e.meta.status) showMeta(metaEl, e.meta); else metaEl.textContent = "";
  }
  // Run an action from a button: busy state, clears old output, reports errors where the user looks.
  function action(btn, section, fn) {
    var errEl = section.querySelector(".error"), metaEl = section.querySelector(".meta");
    btn.addEventListener("click", function () {
      errEl.textContent = "";
      btn.disabled = true; section.setAttribute("aria-busy", "true");
      Promise.resolve().then(fn).then(function (r) {
        if (r && r.meta) showMeta(metaEl, r.meta);
      }, function (e) { showError(errEl, metaEl, e); }).then(function () {
        btn.disabled = false; section.removeAttribute("aria-busy");
      });
    });
  }
  function clientError(code, message) { var e = new Error(message); e.api = { code: code, message: message }; return e; }
  function imageOf(id, what) {
    if (captured[id]) return captured[id];
    var f = $(id).files && $(id).files[0];
    if (!f) throw clientError("missing_image", "choose or capture " + what + " first");
    return f;
  }
  function bar(value, lo) {
    // Cosine similarity lies in [-1, 1] (lo = -1); the bar shows its positive part.
    var wrap = document.createElement("div"); wrap.className = "bar";
    wrap.setAttribute("role", "meter"); wrap.setAttribute("aria-valuemin", String(lo)); wrap.setAttribute("aria-valuemax", "1");
    wrap.setAttribute("aria-valuenow", String(value));
    var fill = document.createElement("span"); fill.style.width = (Math.max(0, Math.min(1, value)) * 100).toFixed(1) + "%";
    wrap.appendChild(fill); return wrap;
  }
  function fixed(v) { return typeof v === "number" ? v.toFixed(4) : String(v); }
  function optNumber(id, fd, field) { var v = $(id).value.trim(); if (v !== "") fd.append(field, v); }

  // Image pickers: preview + camera.
  document.querySelectorAll("input[type=file]").forEach(function (input) {
    input.addEventListener("change", function () {
      delete captured[input.id];
      preview(input.id, input.files && input.files[0]);
    });
  });
  function preview(id, blob) {
    var img = document.querySelector('img[data-preview-for="' + id + '"]');
    if (!img) return;
    if (img.src) URL.revokeObjectURL(img.src);
    if (blob) img.src = URL.createObjectURL(blob); else img.removeAttribute("src");
  }

  var dialog = $("camera"), video = $("camera-video"), camTarget = null, stream = null, camOpener = null;
  var canCamera = !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia) && typeof dialog.showModal === "function";
  document.querySelectorAll("button[data-camera-for]").forEach(function (b) {
    if (!canCamera) return; // insecure context or old browser: file upload only
    b.hidden = false;
    b.addEventListener("click", function () {
      camTarget = b.getAttribute("data-camera-for"); camOpener = b;
      $("camera-error").textContent = "";
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 640 } }, audio: false })
        .then(function (s) { stream = s; video.srcObject = s; dialog.showModal(); $("camera-shoot").focus(); },
          function (e) { $("camera-error").textContent = "camera unavailable: " + (e.name || "") + " " + (e.message || ""); dialog.showModal(); });
    });
  });
  function stopCamera() {
    if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
    stream = null; video.srcObject = null;
  }
  dialog.addEventListener("close", function () { stopCamera(); if (camOpener) camOpener.focus(); });
  $("camera-cancel").addEventListener("click", function () { dialog.close(); });
  $("camera-shoot").addEventListener("click", function () {
    if (!stream || !video.videoWidth) return;
    var c = document.createElement("canvas"); c.width = video.videoWidth; c.height = video.videoHeight;
    c.getContext("2d").drawImage(video, 0, 0);
    var target = camTarget;
    c.toBlob(function (blob) {
      if (!blob) return;
      captured[target] = blob; $(target).value = ""; preview(target, blob);
      var note = document.querySelector('[data-captured-for="' + target + '"]');
      if (note) note.textContent = "camera photo (" + Math.round(blob.size / 1024) + " KB)";
      dialog.close();
    }, "image/jpeg", 0.92);
  });
  document.querySelectorAll("input[type=file]").forEach(function (input) {
    input.addEventListener("change", function () {
      var note = document.querySelector('[data-captured-for="' + input.id + '"]');
      if (note) note.textContent = "";
    });
  });

  // Models.
  function fillSelect(sel, list, empty) {
    var prev = sel.value; sel.textContent = "";
    if (!list.length) { var o = document.createElement("option"); o.value = ""; o.textContent = empty; sel.appendChild(o); }
    list.forEach(function (m) {
      var o = document.createElement("option"); o.value = m.name;
      o.textContent = m.name + " (" + [m.dtype, m.backend].filter(Boolean).join(", ") + ")";
      sel.appendChild(o);
    });
    var def = list.filter(function (m) { return m.default; })[0];
    if (prev && list.some(function (m) { return m.name === prev; })) sel.value = prev;
    else if (def) sel.value = def.name;
  }
  function loadModels() {
    return api("GET", "v1/models").then(function (r) {
      var list = Array.isArray(r.json) ? r.json : (r.json && (r.json.models || r.json.data)) || [];
      models.face = list.filter(function (m) { return m.task === "face"; });
      models.classifier = list.filter(function (m) { return m.task === "classifier"; });
      fillSelect($("face-model"), models.face, "no face model loaded");
      fillSelect($("cls-model"), models.classifier, "no classifier loaded");
      $("models-status").textContent = models.face.length + " face model(s), " + models.classifier.length + " classifier(s) loaded";
      return r;
    });
  }
  action($("connect"), $("setup"), function () { persistKey(); return loadModels(); });

  // Compare.
  action($("compare"), $("sec-compare"), function () {
    var fd = new FormData();
    fd.append("source", imageOf("image-a", "image A"));
    fd.append("target", imageOf("image-b", "image B"));
    optNumber("compare-threshold", fd, "threshold");
    var sim = $("similarity"), verdict = $("verdict"), thr = $("compare-thr-out"), barEl = $("compare-bar");
    sim.textContent = "…"; verdict.textContent = ""; verdict.className = "verdict"; thr.textContent = "";
    return api("POST", "v1/faces/compare", fd, "face").then(function (r) {
      var j = r.json;
      sim.textContent = fixed(j.similarity);
      verdict.textContent = j.match ? "match" : "no match";
      verdict.className = "verdict " + (j.match ? "yes" : "no");
      thr.textContent = "threshold " + fixed(j.threshold);
      barEl.textContent = ""; barEl.appendChild(bar(j.similarity, -1));
      return r;
    }, function (e) { sim.textContent = "–"; throw e; });
  });

  function collection() {
    var id = $("collection").value.trim();
    if (!id) throw clientError("missing_collection", "enter a collection id first");
    return "v1/collections/" + encodeURIComponent(id);
  }

  // Enrol: creates the collection on first use (PUT is create-if-absent).
  action($("enroll"), $("sec-enroll"), function () {
    var base = collection();
    var image = imageOf("enroll-image", "an image to enrol");
    var name = $("enroll-name").value.trim();
    if (!name) throw clientError("missing_name", "enter a name for this face");
    var fd = new FormData(); fd.append("image", image); fd.append("externalId", name);
    var out = $("enroll-result"); out.textContent = "…";
    var model = selectedModel("face");
    return api("PUT", base, model ? { model: model } : {}).then(function () {
      return api("POST", base + "/faces", fd, "face");
    }).then(function (r) {
      out.textContent = "enrolled “" + name + "” as " + r.json.faceId;
      return r;
    }, function (e) { out.textContent = ""; throw e; });
  });

  // Search.
  action($("search"), $("sec-search"), function () {
    var base = collection();
    var fd = new FormData(); fd.append("image", imageOf("search-image", "an image to search with"));
    optNumber("search-k", fd, "k"); optNumber("search-threshold", fd, "threshold");
    var list = $("matches"); list.textContent = ""; $("search-summary").textContent = "…";
    return api("POST", base + "/search", fd, "face").then(function (r) {
      var ms_ = (r.json && r.json.matches) || [];
      $("search-summary").textContent = (ms_.length ? ms_.length + " match(es)" : "no matches") + " at threshold " +
        fixed(r.json.threshold) + " among " + r.json.searchedFaces + " face(s)";
      ms_.forEach(function (m) {
        var li = document.createElement("li");
        var n = document.createElement("span"); n.className = "name"; n.textContent = m.externalId || "(no name)";
        var v = document.createElement("span"); v.className = "num"; v.textContent = fixed(m.similarity);
        var id = document.createElement("span"); id.className = "id"; id.textContent = m.faceId;
        li.appendChild(n); li.appendChild(v); li.appendChild(bar(m.similarity, -1)); li.appendChild(id);
        list.appendChild(li);
      });
      return r;
    }, function (e) { $("search-summary").textContent = ""; throw e; });
  });

  // Classify.
  action($("classify"), $("sec-classify"), function () {
    var fd = new FormData(); fd.append("image", imageOf("classify-image", "an image to classify"));
    optNumber("classify-k", fd, "k");
    var list = $("labels"); list.textContent = "";
    return api("POST", "v1/classify", fd, "classifier").then(function (r) {
      var j = r.json || {};
      (j.predictions || []).forEach(function (p) {
        var li = document.createElement("li");
        var n = document.createElement("span"); n.className = "name"; n.textContent = p.label;
        var v = document.createElement("span"); v.className = "num"; v.textContent = fixed(p.probability);
        li.appendChild(n); li.appendChild(v); li.appendChild(bar(p.probability, 0));
        list.appendChild(li);
      });
      return r;
    });
  });

  if (keyInput.value) loadModels().catch(function (e) { showError($("setup").querySelector(".error"), $("setup").querySelector(".meta"), e); });
})();
`;

/** One image slot: file input (the test hook), optional camera button, preview. */
function picker(id: string, label: string): string {
  return `<div class="picker">
<label for="${id}">${label}</label>
<input type="file" id="${id}" data-testid="${id}" accept="image/jpeg,image/png">
<button type="button" class="secondary" data-camera-for="${id}" hidden>Use camera</button>
<span class="hint" data-captured-for="${id}" aria-live="polite"></span>
<img class="preview" data-preview-for="${id}" alt="preview of ${label.toLowerCase()}">
</div>`;
}

const STATUS = `<p class="meta" aria-live="polite"></p><p class="error" role="alert"></p>`;

/** The page body (no nonce yet). */
const BODY = `<a class="skip" href="#main">Skip to the demos</a>
<header>
<h1>RepMLP Edge playground</h1>
<p>Try the face API from this browser. Requests go to this server's <code>/v1</code> endpoints with your API key —
the same calls a mobile app makes. API reference: <a href="docs">/docs</a> · <a href="openapi.json">openapi.json</a>.</p>
</header>
<main id="main">
<section id="setup" aria-labelledby="h-setup">
<h2 id="h-setup">API key and models</h2>
<div class="row">
<div class="field"><label for="api-key">API key (sent as <code>Authorization: Bearer</code>)</label>
<input type="password" id="api-key" data-testid="api-key" autocomplete="off" spellcheck="false" placeholder="paste the key printed by deno task serve"></div>
<label class="check"><input type="checkbox" id="remember"> keep for this tab</label>
<button type="button" id="connect">Load models</button>
<button type="button" id="forget" class="secondary">Forget key</button>
</div>
<div class="row gap-top">
<div class="field"><label for="face-model">Face model</label><select id="face-model"><option value="">server default</option></select></div>
<div class="field"><label for="cls-model">Classifier</label><select id="cls-model"><option value="">server default</option></select></div>
</div>
<p class="hint" id="models-status" aria-live="polite">The key stays in this page (and in sessionStorage only if you tick the box).</p>
${STATUS}
</section>

<section id="sec-compare" aria-labelledby="h-compare">
<h2 id="h-compare">Compare two faces</h2>
<div class="pickers">${picker("image-a", "Image A")}${picker("image-b", "Image B")}</div>
<div class="row">
<div class="field small"><label for="compare-threshold">Threshold</label><input type="number" id="compare-threshold" step="0.01" min="-1" max="1" placeholder="default"></div>
<button type="button" id="compare" data-testid="compare">Compare</button>
</div>
<div class="out" aria-live="polite"><span class="lbl">Similarity</span><br>
<span class="big" id="similarity" data-testid="similarity">–</span><span class="verdict" id="verdict"></span>
<span class="hint" id="compare-thr-out"></span><div id="compare-bar"></div></div>
${STATUS}
</section>

<section id="sec-enroll" aria-labelledby="h-enroll">
<h2 id="h-enroll">Enrol a face</h2>
<div class="row gap-bottom">
<div class="field"><label for="collection">Collection id (shared with search)</label><input type="text" id="collection" value="playground" autocomplete="off" spellcheck="false"></div>
</div>
<div class="pickers">${picker("enroll-image", "Face to enrol")}</div>
<div class="row">
<div class="field"><label for="enroll-name">Name (externalId)</label><input type="text" id="enroll-name" data-testid="enroll-name" autocomplete="off"></div>
<button type="button" id="enroll" data-testid="enroll">Enrol</button>
</div>
<p class="out" id="enroll-result" aria-live="polite"></p>
${STATUS}
</section>

<section id="sec-search" aria-labelledby="h-search">
<h2 id="h-search">Search the collection</h2>
<div class="pickers">${picker("search-image", "Face to look up")}</div>
<div class="row">
<div class="field small"><label for="search-k">Top k</label><input type="number" id="search-k" min="1" max="100" value="5"></div>
<div class="field small"><label for="search-threshold">Threshold</label><input type="number" id="search-threshold" step="0.01" min="-1" max="1" placeholder="default"></div>
<button type="button" id="search" data-testid="search">Search</button>
</div>
<div class="out"><span class="hint" id="search-summary" aria-live="polite"></span>
<ol class="list" id="matches" data-testid="matches" aria-label="matches, most similar first"></ol></div>
${STATUS}
</section>

<section id="sec-classify" aria-labelledby="h-classify">
<h2 id="h-classify">Classify an image</h2>
<div class="pickers">${picker("classify-image", "Image to classify")}</div>
<div class="row">
<div class="field small"><label for="classify-k">Top k</label><input type="number" id="classify-k" min="1" max="20" value="3"></div>
<button type="button" id="classify" data-testid="classify">Classify</button>
</div>
<ol class="list out" id="labels" data-testid="labels" aria-label="labels, most likely first" aria-live="polite"></ol>
${STATUS}
</section>
</main>
<footer>Served by this app; no external scripts, fonts or trackers. Images go only to this server.</footer>
<dialog id="camera" aria-labelledby="h-camera">
<h2 id="h-camera">Camera</h2>
<video id="camera-video" autoplay playsinline muted></video>
<p class="error" id="camera-error" role="alert"></p>
<div class="row"><button type="button" class="secondary" id="camera-cancel">Cancel</button>
<button type="button" id="camera-shoot">Take photo</button></div>
</dialog>`;

/** Full HTML of the page, with `nonce` on its inline style and script. */
export function playgroundHtml(nonce: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>RepMLP Edge playground</title>
<link rel="icon" href="data:,">
<style nonce="${nonce}">${PLAYGROUND_CSS}</style>
</head>
<body>
${BODY}
<script nonce="${nonce}">${PLAYGROUND_JS}</script>
</body>
</html>
`;
}

/** Content-Security-Policy for the page: own origin only, inline code only with this response's nonce. */
export function playgroundCsp(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    // 'unsafe-hashes' is not needed: the script sets styles through CSSOM, which CSP allows.
    `style-src 'nonce-${nonce}'`,
    "img-src 'self' blob: data:",
    "media-src 'self' blob:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

function newNonce(): string {
  const b = crypto.getRandomValues(new Uint8Array(18));
  return btoa(String.fromCharCode(...b));
}

/**
 * The page as a Response (fresh nonce each time). Usable directly as a Hono handler
 * (`app.get("/", playgroundHandler)`) or from any fetch handler.
 */
export function playgroundHandler(): Response {
  const nonce = newNonce();
  return new Response(playgroundHtml(nonce), {
    headers: {
      "content-type": "text/html; charset=utf-8",
      "content-security-policy": playgroundCsp(nonce),
      // Camera only for this origin; the page asks for it only on a click.
      "permissions-policy": "camera=(self), microphone=(), geolocation=()",
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
    },
  });
}
