/**
 * End-to-end test of the playground page: Debian's Chromium (headless, driven by playwright-core)
 * against a real `Deno.serve` running `createApp` with real (tiny, reference-forward) models, with
 * real JPEG/PNG files set on the page's file inputs. Every number the page shows is checked against
 * the same request made directly over HTTP.
 *
 * Needs `/usr/bin/chromium` (`apt-get install -y chromium`; `.ci/run` installs it). Without it the
 * test fails when `CI` is set and is skipped otherwise. Screenshots go to `test-artifacts/`
 * (gitignored); `UPDATE_SCREENSHOTS=1` (or a missing file) also refreshes `docs/playground.png`.
 */
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { MemoryStore } from "../../runtime/src/server/store/memory.ts";
import { playgroundHandler } from "../../runtime/src/server/playground.ts";
import { AUTH, call, form, identityImage, KEY, serve, toJpeg, toPng } from "./api_testutil.ts";

const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";
const haveChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();
const inCI = !!Deno.env.get("CI");
const ROOT = new URL("../../", import.meta.url);
const ARTIFACTS = new URL("test-artifacts/", ROOT);
const DOCS_SHOT = new URL("docs/playground.png", ROOT);
const SIMILARITY = /^-?\d\.\d{4}$/;

Deno.test({
  name: "playground: compare, enrol, search, classify in headless Chromium against a real server",
  ignore: !haveChromium && !inCI,
  // playwright-core keeps a few Node-compat handles (pipes to the browser) until process exit.
  sanitizeResources: false,
  sanitizeOps: false,
}, async (t) => {
  if (!haveChromium) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}: install it with 'apt-get install -y chromium' (CI does this in .ci/run)`,
    );
  }
  const tmp = await Deno.makeTempDir({ prefix: "playground-e2e-" });
  const server = serve({ store: new MemoryStore(), playground: playgroundHandler, rateLimit: false });
  const files: Record<string, string> = {};
  const bytes: Record<string, Uint8Array> = {};
  const put = async (name: string, b: Uint8Array) => {
    files[name] = `${tmp}/${name}`;
    bytes[name] = b;
    await Deno.writeFile(files[name], b);
  };
  // Two photos of identity 1 (the second shifted, noisy and a PNG), and two other identities.
  await put("alice-1.jpg", toJpeg(identityImage(1), 96, 96));
  await put("alice-2.png", toPng(identityImage(1, 1), 96, 96));
  await put("bob.jpg", toJpeg(identityImage(2), 96, 96));
  await put("carol.png", toPng(identityImage(3), 96, 96));

  const ctx = await chromium.launchPersistentContext(`${tmp}/profile`, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
      // A synthetic camera that is granted without a prompt, for the getUserMedia path.
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
    ],
    viewport: { width: 1280, height: 900 },
    colorScheme: "light",
  });
  try {
    const page = ctx.pages()[0] ?? await ctx.newPage();
    // Generous: the suite runs in parallel on 2 shared cores; this bounds waiting, it does not time anything.
    page.setDefaultTimeout(60_000);
    const requested: string[] = [];
    const consoleErrors: string[] = [];
    page.on("request", (r) => requested.push(r.url()));
    page.on("pageerror", (e) => consoleErrors.push(`pageerror: ${e.message}`));
    page.on("console", (m) => {
      // Chromium logs every 4xx fetch as "Failed to load resource"; the 401 below is deliberate.
      if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) {
        consoleErrors.push(m.text());
      }
    });
    const tid = (id: string) => page.getByTestId(id);
    const text = async (sel: string) => ((await page.locator(sel).textContent()) ?? "").trim();

    await t.step("page loads with a nonce CSP and every test hook", async () => {
      const res = await page.goto(`${server.url}/`);
      assert.equal(res?.status(), 200);
      const csp = res?.headers()["content-security-policy"] ?? "";
      assert.match(csp, /script-src 'nonce-[A-Za-z0-9+/=]+'/);
      assert.doesNotMatch(csp, /unsafe-inline/);
      for (
        const id of [
          "api-key",
          "image-a",
          "image-b",
          "compare",
          "similarity",
          "enroll-image",
          "enroll-name",
          "enroll",
          "search-image",
          "search",
          "matches",
        ]
      ) assert.equal(await tid(id).count(), 1, `data-testid=${id}`);
    });

    await t.step(
      "keyboard: skip link, reference links, then the API key; Enter loads the models",
      async () => {
        await page.keyboard.press("Tab");
        assert.equal(await page.locator(":focus").getAttribute("class"), "skip");
        // Then the two API-reference links in the header, then the key.
        for (const href of ["docs", "openapi.json"]) {
          await page.keyboard.press("Tab");
          assert.equal(await page.locator(":focus").getAttribute("href"), href);
        }
        await page.keyboard.press("Tab");
        assert.equal(await page.locator(":focus").getAttribute("data-testid"), "api-key");
        await page.keyboard.type(KEY);
        await page.locator("#connect").focus();
        await page.keyboard.press("Enter");
        await page.locator("#face-model option", { hasText: "tiny-face" }).waitFor({ state: "attached" });
        assert.equal(await page.locator("#face-model").inputValue(), "tiny-face");
        assert.equal(await page.locator("#cls-model").inputValue(), "tiny-fmnist");
        assert.match(await text("#models-status"), /1 face model\(s\), 1 classifier\(s\)/);
      },
    );

    await t.step("the key survives a reload only when asked, and only in sessionStorage", async () => {
      await page.reload();
      assert.equal(await tid("api-key").inputValue(), "");
      await tid("api-key").fill(KEY);
      await page.locator("#remember").check();
      await page.reload();
      assert.equal(await tid("api-key").inputValue(), KEY);
      await page.locator("#face-model option", { hasText: "tiny-face" }).waitFor({ state: "attached" });
      assert.equal(await page.evaluate<number>("localStorage.length"), 0);
      await page.locator("#forget").click();
      assert.equal(await page.evaluate<number>("sessionStorage.length"), 0);
      await tid("api-key").fill(KEY);
    });

    await t.step(
      "compare two files: similarity, threshold, verdict, model/dtype/backend/Server-Timing",
      async () => {
        await tid("image-a").setInputFiles(files["alice-1.jpg"]);
        await tid("image-b").setInputFiles(files["alice-2.png"]);
        await tid("compare").click();
        await tid("similarity").filter({ hasText: SIMILARITY }).waitFor();
        const direct = await call(`${server.url}/v1/faces/compare`, {
          method: "POST",
          headers: AUTH,
          body: form({ source: bytes["alice-1.jpg"], target: bytes["alice-2.png"] }),
        });
        assert.equal(direct.status, 200);
        const sim = direct.body.similarity as number;
        assert.equal(await text("[data-testid=similarity]"), sim.toFixed(4));
        assert.equal(await text("#verdict"), direct.body.match ? "match" : "no match");
        assert.equal(
          await text("#compare-thr-out"),
          `threshold ${(direct.body.threshold as number).toFixed(4)}`,
        );
        const meta = await text("#sec-compare .meta");
        for (
          const s of [
            "POST /v1/faces/compare → 200",
            "model: tiny-face",
            "dtype: float32",
            "backend: reference",
          ]
        ) {
          assert.ok(meta.includes(s), `meta line lacks '${s}': ${meta}`);
        }
        assert.match(meta, /server: .*decode [\d.]+ ms.*infer [\d.]+ ms/);
        assert.match(meta, /request: \S+/);
      },
    );

    await t.step(
      "camera: capture image A with getUserMedia, compare, keyboard returns to the opener",
      async () => {
        const opener = page.locator('button[data-camera-for="image-a"]');
        await opener.click();
        await page.locator("#camera[open]").waitFor();
        await page.waitForFunction("document.getElementById('camera-video').videoWidth > 0");
        await page.keyboard.press("Enter"); // focus starts on "Take photo"
        await page.locator("#camera:not([open])").waitFor({ state: "attached" });
        assert.equal(await page.locator(":focus").getAttribute("data-camera-for"), "image-a");
        assert.match(await text('[data-captured-for="image-a"]'), /^camera photo \(\d+ KB\)$/);
        await tid("compare").click();
        await page.locator("#sec-compare .meta", { hasText: "→ 200" }).waitFor();
        await tid("similarity").filter({ hasText: SIMILARITY }).waitFor();
        // Escape closes the dialog without capturing; choosing a file replaces the camera photo.
        await opener.click();
        await page.locator("#camera[open]").waitFor();
        await page.keyboard.press("Escape");
        await page.locator("#camera:not([open])").waitFor({ state: "attached" });
        await tid("image-a").setInputFiles(files["alice-1.jpg"]);
        assert.equal(await text('[data-captured-for="image-a"]'), "");
      },
    );

    await t.step("enrol three people into a collection", async () => {
      for (const [file, name] of [["alice-1.jpg", "alice"], ["bob.jpg", "bob"], ["carol.png", "carol"]]) {
        await tid("enroll-image").setInputFiles(files[file]);
        await tid("enroll-name").fill(name);
        await tid("enroll").click();
        await page.locator("#enroll-result", { hasText: `enrolled “${name}” as ` }).waitFor();
      }
      const col = await call(`${server.url}/v1/collections/playground`, { headers: AUTH });
      assert.equal(col.status, 200);
      assert.equal(col.body.faceCount, 3);
      assert.equal(col.body.model, "tiny-face");
    });

    await t.step("search with another photo: alice first, similarities equal the API's", async () => {
      await page.locator("#search-threshold").fill("-1"); // list everyone, with bars
      await tid("search-image").setInputFiles(files["alice-2.png"]);
      await tid("search").click();
      await tid("matches").locator("li").nth(2).waitFor();
      const direct = await call(`${server.url}/v1/collections/playground/search`, {
        method: "POST",
        headers: AUTH,
        body: form({ image: bytes["alice-2.png"] }, { threshold: "-1" }),
      });
      const want = direct.body.matches as { externalId: string; similarity: number; faceId: string }[];
      assert.equal(want[0].externalId, "alice");
      const rows = tid("matches").locator("li");
      assert.equal(await rows.count(), want.length);
      for (let i = 0; i < want.length; i++) {
        assert.equal(await rows.nth(i).locator(".name").textContent(), want[i].externalId);
        assert.equal(await rows.nth(i).locator(".num").textContent(), want[i].similarity.toFixed(4));
        assert.equal(await rows.nth(i).locator(".id").textContent(), want[i].faceId);
        assert.equal(
          await rows.nth(i).locator("[role=meter]").getAttribute("aria-valuenow"),
          String(want[i].similarity),
        );
      }
      assert.match(await text("#search-summary"), /^3 match\(es\) at threshold -1\.0000 among 3 face\(s\)$/);
    });

    await t.step("classify: top-3 labels with probabilities", async () => {
      await page.locator("#classify-image").setInputFiles(files["bob.jpg"]);
      await page.locator("#classify").click();
      await page.locator("#labels li").nth(2).waitFor();
      const direct = await call(`${server.url}/v1/classify?k=3`, {
        method: "POST",
        headers: AUTH,
        body: form({ image: bytes["bob.jpg"] }),
      });
      const want = direct.body.predictions as { label: string; probability: number }[];
      const got = await page.locator("#labels li .name").allTextContents();
      assert.deepEqual(got, want.map((p) => p.label));
    });

    await t.step("API errors are shown as the API reports them", async () => {
      await tid("api-key").fill("wrong-key-0000000000");
      await tid("compare").click();
      await page.locator("#sec-compare .error", { hasText: "unauthorized" }).waitFor();
      assert.equal(await text("#sec-compare .error"), "HTTP 401 · unauthorized: API key not recognised");
      assert.equal(await text("[data-testid=similarity]"), "–");
      await tid("api-key").fill(KEY);
      await tid("enroll-image").setInputFiles([]);
      await tid("enroll").click();
      await page.locator("#sec-enroll .error", { hasText: "missing_image" }).waitFor();
      assert.equal(
        await text("#sec-enroll .error"),
        "missing_image: choose or capture an image to enrol first",
      );
      // Put the page back in a clean, filled-in state for the screenshot.
      await tid("compare").click();
      await page.locator("#sec-compare .error:empty").waitFor({ state: "attached" });
      await tid("similarity").filter({ hasText: SIMILARITY }).waitFor();
      await tid("enroll-image").setInputFiles(files["carol.png"]);
      await tid("enroll-name").fill("carol");
      await page.locator("#sec-enroll .error").evaluate((e) => (e.textContent = ""));
    });

    await t.step("screenshots at desktop and phone widths; nothing loaded from elsewhere", async () => {
      await Deno.mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: new URL("playground.png", ARTIFACTS).pathname, fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
      // Let layout and paint settle at the new width before measuring and capturing.
      await page.evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))");
      const overflow = await page.evaluate<number>(
        "document.documentElement.scrollWidth - window.innerWidth",
      );
      assert.ok(overflow <= 0, `page is ${overflow}px wider than a 390px phone screen`);
      await page.screenshot({ path: new URL("playground-phone.png", ARTIFACTS).pathname, fullPage: true });
      let haveDocsShot = true;
      try {
        await Deno.stat(DOCS_SHOT);
      } catch {
        haveDocsShot = false;
      }
      if (!haveDocsShot || Deno.env.get("UPDATE_SCREENSHOTS")) {
        await Deno.copyFile(new URL("playground.png", ARTIFACTS), DOCS_SHOT);
      }
      const foreign = requested.filter((u) => !u.startsWith(server.url) && !/^(data|blob):/.test(u));
      assert.deepEqual(foreign, []);
      assert.deepEqual(consoleErrors, []);
    });
  } finally {
    await ctx.close();
    await server.close();
    await Deno.remove(tmp, { recursive: true });
  }
});
