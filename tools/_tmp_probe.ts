import { createApp } from "../runtime/src/server/app.ts";
import { MemoryStore } from "../runtime/src/server/store/memory.ts";
const app = createApp({
  faceModels: [],
  store: new MemoryStore(),
  apiKeys: ["abcdefgh123"],
  log: () => {},
  cors: { origins: ["https://ok.example"] },
});
const s = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
async function raw(req: string) {
  const c = await Deno.connect({ port: s.addr.port, hostname: "127.0.0.1" });
  await c.write(new TextEncoder().encode(req));
  const buf = new Uint8Array(65536);
  let out = "";
  try {
    for (;;) {
      const n = await c.read(buf);
      if (n === null) break;
      out += new TextDecoder().decode(buf.subarray(0, n));
      if (out.includes("\r\n\r\n") && out.length > 0) {
        await new Promise((r) => setTimeout(r, 100));
        try {
          const n2 = await Promise.race([
            c.read(buf),
            new Promise<null>((r) => setTimeout(() => r(null), 200)),
          ]);
          if (n2) out += new TextDecoder().decode(buf.subarray(0, n2));
        } catch {}
        break;
      }
    }
  } catch (e) {
    out += " ERR " + e;
  }
  try {
    c.close();
  } catch {}
  return out.replace(/\r\n/g, " | ").slice(0, 400);
}
const A = "Authorization: Bearer abcdefgh123\r\n";
console.log("TRACE:", await raw(`TRACE /v1/models HTTP/1.1\r\nHost: x\r\n${A}Connection: close\r\n\r\n`));
console.log(
  "TRACE body:",
  await raw(`TRACE /v1/models HTTP/1.1\r\nHost: x\r\n${A}Content-Length: 2\r\nConnection: close\r\n\r\nab`),
);
console.log(
  "PATCH:",
  await raw(
    `PATCH /v1/collections/x HTTP/1.1\r\nHost: x\r\n${A}Content-Length: 2\r\nConnection: close\r\n\r\nab`,
  ),
);
console.log(
  "CL -1:",
  await raw(
    `POST /v1/faces/embed HTTP/1.1\r\nHost: x\r\n${A}Content-Length: -1\r\nConnection: close\r\n\r\nab`,
  ),
);
console.log(
  "big hdr:",
  await raw(
    `GET /v1/models HTTP/1.1\r\nHost: x\r\n${A}X-Big: ${"a".repeat(70000)}\r\nConnection: close\r\n\r\n`,
  ),
);
console.log(
  "TAO bad origin:",
  await raw(`GET /healthz HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\nConnection: close\r\n\r\n`),
);
console.log(
  "TAO ok origin:",
  await raw(`GET /healthz HTTP/1.1\r\nHost: x\r\nOrigin: https://ok.example\r\nConnection: close\r\n\r\n`),
);
await s.shutdown();
