/**
 * WebP and GIF end to end inside workerd: uploaded to `POST /v1/images` and sent as a data URL to
 * `/v1/generate`, through the decoder app and the vision worker's real wiring (functions/vision/deps.ts: libwebp
 * imported as a compiled module) and the shapes model. A lossless WebP of a PNG, and a GIF next to a PNG of
 * Pillow's decode of it, must give the very same soft tokens as the PNG.
 */
import { env } from "cloudflare:workers";
import { encode as encodePng } from "fast-png";
import { describe, expect, it } from "vitest";
import { createDecoderApp } from "../../functions/decoder/app.ts";
import { decoderDeps } from "../../functions/decoder/wiring.ts";
import { visionDeps } from "../../functions/vision/deps.ts";
import { encodeReply } from "../../functions/vision/encode.ts";
import { fromBase64 } from "./support.ts";

const app = createDecoderApp((e) => ({
  ...decoderDeps(e),
  encodeImage: (bytes, options) => encodeReply(visionDeps(e), bytes, options),
  session: (name) => env.FAKE_SESSIONS.get(env.FAKE_SESSIONS.idFromName(name)),
}));

interface PillowCase { name: string; webp?: string; gif?: string; png?: string; rgb: string; size: [number, number] }
const PILLOW = JSON.parse(env.PILLOW_WEBP_GIF) as { webp: PillowCase[]; gif: PillowCase[] };
const byName = (cases: PillowCase[], name: string): PillowCase => cases.find((c) => c.name === name)!;

/** Uploads `bytes` and returns the stored soft tokens' bytes. */
async function upload(bytes: Uint8Array, type: string): Promise<Uint8Array> {
  const res = await app.request("/v1/images", { method: "POST", headers: { "content-type": type }, body: bytes as Uint8Array<ArrayBuffer> }, env);
  const body = await res.json<any>();
  expect(res.status, JSON.stringify(body)).toBe(201);
  const stored = await visionDeps(env).store.get(body.image_id);
  expect(stored).not.toBeNull();
  const { data } = stored!.soft;
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

describe("WebP and GIF through the workers", () => {
  it("a lossless WebP gives the soft tokens of the PNG it was made from", async () => {
    const c = byName(PILLOW.webp, "lossless-alpha-of-png");
    const [webp, png] = [await upload(fromBase64(c.webp!), "image/webp"), await upload(fromBase64(c.png!), "image/png")];
    expect(webp.length).toBeGreaterThan(0);
    expect(webp.every((v, i) => v === png[i]) && webp.length === png.length).toBe(true);
  });

  it("an interlaced GIF with a local table gives the soft tokens of Pillow's decode of it", async () => {
    const c = byName(PILLOW.gif, "local-table-offset-transparent-interlaced");
    const [width, height] = c.size;
    const png = encodePng({ width, height, channels: 3, depth: 8, data: fromBase64(c.rgb) });
    const [gif, ref] = [await upload(fromBase64(c.gif!), "image/gif"), await upload(png, "image/png")];
    expect(gif.every((v, i) => v === ref[i]) && gif.length === ref.length).toBe(true);
  });

  it("generate answers for an animated GIF sent as a data URL, and a truncated one is a 400 naming the problem", async () => {
    const gif = byName(PILLOW.gif, "animated-pillow").gif!;
    const post = (image: string) =>
      app.request("/v1/generate", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "caption en", image, stream: false, max_tokens: 4 }) }, env);
    const ok = await post(`data:image/gif;base64,${gif}`);
    expect(ok.status, await ok.clone().text()).toBe(200);
    const cut = fromBase64(gif).subarray(0, 150);
    const bad = await post(`data:image/gif;base64,${btoa(String.fromCharCode(...cut))}`);
    const error = (await bad.json<any>()).error;
    expect([bad.status, error.param]).toEqual([400, "image"]);
    expect(error.message).toMatch(/^could not decode the GIF image: its image data ends after \d+ of the first frame's 391 pixels \(the file is truncated\)$/);
  });
});
