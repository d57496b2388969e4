/**
 * Browser playground served at `/`: a single self-contained page (HTML and CSS held here as strings,
 * the script bundled from `playground/client.ts` into `playground/client_bundle.ts`, so it works on
 * Deno and Cloudflare Workers without file access and without any CDN) that
 * calls the public `/v1` API with a key the user pastes in. Inline code runs under a per-response
 * CSP nonce, so the page needs no `'unsafe-inline'`.
 *
 * Test hooks (`data-testid`): api-key, image-a, image-b, compare, similarity, enroll-image,
 * enroll-name, enroll, search-image, search, matches (plus classify-image, classify, labels).
 */
import { PLAYGROUND_JS } from "./playground/client_bundle.ts";

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
.frame{position:relative;width:100%;max-width:160px}
.frame canvas.boxes{position:absolute;inset:0;width:100%;height:100%;pointer-events:none}
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

/** Page script: `playground/client.ts`, bundled at build time (`deno task build:playground`). */
export { PLAYGROUND_JS };

/** One image slot: file input (the test hook), optional camera button, preview. */
function picker(id: string, label: string): string {
  return `<div class="picker">
<label for="${id}">${label}</label>
<input type="file" id="${id}" data-testid="${id}" accept="image/jpeg,image/png">
<button type="button" class="secondary" data-camera-for="${id}" hidden>Use camera</button>
<span class="hint" data-captured-for="${id}" aria-live="polite"></span>
<div class="frame"><img class="preview" data-preview-for="${id}" alt="preview of ${label.toLowerCase()}">
<canvas class="boxes" data-boxes-for="${id}" aria-hidden="true"></canvas></div>
<span class="hint" data-faces-for="${id}" aria-live="polite"></span>
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
<div class="field small"><label for="enroll-max">Faces</label><input type="number" id="enroll-max" min="1" max="100" placeholder="1"></div>
<button type="button" id="detect" class="secondary" data-testid="detect">Find faces</button>
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
