/**
 * Remote images end to end: `npm start -- --var IMAGE_URL_ORIGINS:http://127.0.0.1:<port> …` (scripts/start.ts,
 * both workers under wrangler dev) fetching from a local HTTP server (node:http, started here). The eval image's
 * recorded answer must come back through a chat image_url part and the native image_url (also via a redirect);
 * every failure is its 4xx or 502/504 JSON naming the URL.
 */
import { createServer, type Server } from "node:http";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SHAPES_MODEL } from "../helpers/golden.ts";
import { startDevServer, type DevServer } from "./support/dev-server.ts";

const CASES: { image: string; prefix: string; answer: string }[] = JSON.parse(readFileSync(join(SHAPES_MODEL, "eval/cases.json"), "utf8")).cases;
const CAPTION = CASES.find((c) => c.image === "img_001_160x120.png" && c.prefix === "caption en")!;
const PNG = readFileSync(join(SHAPES_MODEL, "eval", CAPTION.image));
const MAX_IMAGE_BYTES = 200_000;

let images: Server;
let origin: string;
let server: DevServer;
const hits: string[] = [];

beforeAll(async () => {
  images = createServer((req, res) => {
    hits.push(req.url ?? "");
    if (req.url === "/shapes.png") return void res.writeHead(200, { "content-type": "image/png", "content-length": PNG.length }).end(PNG);
    if (req.url === "/moved") return void res.writeHead(302, { location: "/shapes.png" }).end();
    if (req.url === "/elsewhere") return void res.writeHead(301, { location: "https://example.com/shapes.png" }).end();
    if (req.url === "/big") {
      res.writeHead(200, { "content-type": "image/png" }); // chunked: no content-length to refuse it by
      const chunk = Buffer.alloc(64 * 1024);
      let sent = 0;
      const more = () => {
        while (sent < 4 * MAX_IMAGE_BYTES && res.write(chunk)) sent += chunk.length;
        if (sent < 4 * MAX_IMAGE_BYTES) res.once("drain", more);
        else res.end();
      };
      return more();
    }
    if (req.url === "/slow") return; // never answers
    res.writeHead(404).end("not here");
  });
  await new Promise<void>((r) => images.listen(0, "127.0.0.1", r));
  origin = `http://127.0.0.1:${(images.address() as { port: number }).port}`;
  server = await startDevServer({
    viaStartScript: true,
    vars: { IMAGE_URL_ORIGINS: origin, IMAGE_URL_TIMEOUT_S: "2", MAX_IMAGE_BYTES: String(MAX_IMAGE_BYTES) },
  });
}, 180_000);

afterAll(async () => {
  await server?.stop();
  images?.closeAllConnections();
  await new Promise((r) => images?.close(r));
});

const post = (path: string, body: unknown) =>
  fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

const chat = (url: string) =>
  post("/v1/chat/completions", {
    model: "paligemma-shapes",
    messages: [{ role: "user", content: [{ type: "image_url", image_url: { url } }, { type: "text", text: CAPTION.prefix }] }],
  });

describe("remote images through npm start", () => {
  it("answers an image fetched from an allowed origin: chat part, native field, a redirect", async () => {
    const res = await chat(`${origin}/shapes.png`);
    expect([res.status, (await res.json<any>()).choices[0].message.content]).toEqual([200, CAPTION.answer]);
    const native = await post("/v1/generate", { image_url: `${origin}/moved`, prompt: CAPTION.prefix, stream: false });
    expect([native.status, (await native.json<any>()).text]).toEqual([200, CAPTION.answer]);
    expect(hits).toEqual(["/shapes.png", "/moved", "/shapes.png"]);
  });

  it("refuses origins and redirect targets not listed (400), without fetching them", async () => {
    const other = await post("/v1/generate", { image_url: "https://example.com/shapes.png", prompt: "caption en" });
    expect([other.status, (await other.json<any>()).error]).toEqual([
      400,
      { type: "invalid_request", param: "image_url", message: 'the image URL "https://example.com/shapes.png" is on the origin "https://example.com", which this deployment does not fetch from (IMAGE_URL_ORIGINS)' },
    ]);
    const localhost = await chat(origin.replace("127.0.0.1", "localhost") + "/shapes.png"); // another origin
    expect([localhost.status, (await localhost.json<any>()).error.type]).toEqual([400, "invalid_request_error"]);
    const away = await post("/v1/generate", { image_url: `${origin}/elsewhere`, prompt: "caption en" });
    expect([away.status, (await away.json<any>()).error.message]).toEqual([400, expect.stringContaining('redirected to "https://example.com/shapes.png", which is on the origin')]);
  });

  it("reports a failing origin as 502, a body over the limit as 413 and no answer as 504", async () => {
    const missing = await chat(`${origin}/missing.png`);
    expect([missing.status, (await missing.json<any>()).error]).toEqual([
      502,
      { message: `the image URL "${origin}/missing.png" answered HTTP 404`, type: "server_error", param: "messages[0].content[0].image_url.url", code: "bad_gateway" },
    ]);
    const big = await post("/v1/generate", { image_url: `${origin}/big`, prompt: "caption en" });
    expect([big.status, (await big.json<any>()).error.message]).toEqual([413, `the image at "${origin}/big" is larger than ${MAX_IMAGE_BYTES} bytes`]);
    const t0 = Date.now();
    const slow = await post("/v1/generate", { image_url: `${origin}/slow`, prompt: "caption en" });
    expect([slow.status, (await slow.json<any>()).error]).toEqual([504, { type: "timeout", param: "image_url", message: `the image URL "${origin}/slow" did not answer within 2 s` }]);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});
