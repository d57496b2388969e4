/**
 * The committed playground bundle (`runtime/src/server/playground/client_bundle.ts`) is what
 * `deno task build:playground` makes from `client.ts` today, and the page inlines it safely.
 */
import assert from "node:assert/strict";
import { CLIENT_BUNDLE, playgroundBundleModule } from "../build/playground.ts";
import { PLAYGROUND_JS } from "../../runtime/src/server/playground/client_bundle.ts";
import { playgroundHtml } from "../../runtime/src/server/playground.ts";

Deno.test("playground bundle: committed client_bundle.ts is up to date with client.ts", async () => {
  const want = await playgroundBundleModule();
  const have = await Deno.readTextFile(CLIENT_BUNDLE);
  assert.ok(have === want, "client_bundle.ts is stale: run `deno task build:playground` and commit it");
});

Deno.test("playground bundle: the page inlines the bundled script once, under the nonce", () => {
  assert.ok(PLAYGROUND_JS.length > 1000);
  assert.ok(!/<\/script/i.test(PLAYGROUND_JS));
  const html = playgroundHtml("n0nce");
  assert.equal(html.split(PLAYGROUND_JS).length, 2);
  assert.ok(html.includes(`<script nonce="n0nce">${PLAYGROUND_JS}</script>`));
});
