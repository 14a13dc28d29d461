/**
 * Hostile inputs for the hardening tests: crafted image files (headers that lie, decompression bombs, formats
 * the service does not decode), and the catalogue of malformed requests that every server must refuse with a
 * 4xx JSON error (used both through `app.request` and against the real `wrangler dev` server).
 */
import { deflateRawSync, deflateSync } from "node:zlib";
import { encode as encodeJpeg } from "jpeg-js";
import { expect } from "vitest";
import { evalImage } from "../serving/support/harness.ts";

/** Bytes of a latin-1 string. */
export const latin1 = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One PNG chunk (length, type, data, CRC). */
export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(latin1(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), (o += p.length));
  return out;
};

/** A PNG (RGB, 8-bit) of `width`×`height` whose IDAT holds `raw` deflated, plus `extra` chunks before it. */
export function png(width: number, height: number, raw: Uint8Array, extra: Uint8Array[] = []): Uint8Array {
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, width);
  new DataView(ihdr.buffer).setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const signature = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
  return concat(signature, pngChunk("IHDR", ihdr), ...extra, pngChunk("IDAT", deflateSync(raw, { level: 9 })), pngChunk("IEND", new Uint8Array()));
}

let bombs: { png: Uint8Array; icc: Uint8Array } | undefined;

function makeBombs(): { png: Uint8Array; icc: Uint8Array } {
  const zeros = deflateSync(new Uint8Array(64 * 1024 * 1024), { level: 9 });
  const profile = concat(latin1("icc\0\0"), zeros);
  return {
    png: withIdat(64, 64, zeros),
    icc: png(8, 8, new Uint8Array(8 * (1 + 24)), [pngChunk("iCCP", profile)]),
  };
}

/** A PNG of `width`×`height` whose IDAT is `compressed` as given. */
function withIdat(width: number, height: number, compressed: Uint8Array): Uint8Array {
  const full = png(width, height, new Uint8Array(0));
  const head = full.subarray(0, 33); // signature + IHDR
  return concat(head, pngChunk("IDAT", compressed), pngChunk("IEND", new Uint8Array()));
}

/** A 64×64 PNG whose image data inflates to 64 MiB: a decompression bomb of about 64 KiB. */
export function pngBomb(): Uint8Array {
  return (bombs ??= makeBombs()).png;
}

/** A valid 8×8 PNG carrying an iCCP chunk that inflates to 64 MiB. */
export function iccBomb(): Uint8Array {
  return (bombs ??= makeBombs()).icc;
}

/** A PNG whose header declares `width`×`height` (valid chunks, almost no data). */
export function pngDeclaring(width: number, height: number): Uint8Array {
  return png(width, height, new Uint8Array(16));
}

/** A baseline JPEG of `width`×`height`, then with its SOF patched to declare `declared` (width, height). */
export function jpegDeclaring(declared?: [number, number]): Uint8Array {
  const rgba = new Uint8Array(16 * 16 * 4).fill(200);
  const bytes = new Uint8Array(encodeJpeg({ width: 16, height: 16, data: rgba }, 90).data);
  if (declared) {
    for (let o = 2; o + 9 < bytes.length; o++) {
      if (bytes[o] === 0xff && bytes[o + 1] === 0xc0) {
        new DataView(bytes.buffer, bytes.byteOffset).setUint16(o + 5, declared[1]);
        new DataView(bytes.buffer, bytes.byteOffset).setUint16(o + 7, declared[0]);
        break;
      }
    }
  }
  return bytes;
}

/** A 16×16 JPEG whose one scan is repeated `scans` times (a CPU bomb in miniature). */
export function jpegWithScans(scans: number): Uint8Array {
  const base = jpegDeclaring();
  let sos = 2;
  while (!(base[sos] === 0xff && base[sos + 1] === 0xda)) sos++;
  const scan = base.subarray(sos, base.length - 2); // SOS … up to EOI
  return concat(base.subarray(0, sos), ...Array.from({ length: scans }, () => scan), Uint8Array.of(0xff, 0xd9));
}

/**
 * A 64×64 PNG whose IDAT (or an iCCP profile) is a zlib stream opening with a stored block whose NLEN is not
 * the complement of LEN, followed by `inflated` bytes' worth of highly compressed zeros.
 */
export function nlenBomb(where: "IDAT" | "iCCP", inflated: number): Uint8Array {
  const rest = deflateRawSync(new Uint8Array(inflated), { level: 9 });
  const stream = concatBytes(Uint8Array.of(0x78, 0x01, 0x00, 0x04, 0x00, 0x00, 0x00), new Uint8Array(4), rest); // LEN 4, NLEN 0
  if (where === "IDAT") {
    const plain = png(64, 64, new Uint8Array(64 * (1 + 64 * 3)));
    return concatBytes(plain.subarray(0, 33), pngChunk("IDAT", stream), pngChunk("IEND", new Uint8Array()));
  }
  return png(8, 8, new Uint8Array(8 * (1 + 24)), [pngChunk("iCCP", concatBytes(latin1("icc\0\0"), stream))]);
}

/** A 16×16 JPEG with a DRI segment that declares 65535 bytes and holds `scans` copies of the image's scan. */
export function jpegWithHiddenScans(scans: number): Uint8Array {
  const base = jpegDeclaring();
  const sos = base.findIndex((b, i) => b === 0xff && base[i + 1] === 0xda);
  const scan = base.subarray(sos, base.length - 2);
  const hidden = concatBytes(...Array.from({ length: scans }, () => scan)).subarray(0, 65_535 - 4);
  const dri = concatBytes(Uint8Array.of(0xff, 0xdd, 0xff, 0xff, 0x00, 0x00), hidden);
  return concatBytes(base.subarray(0, sos), dri, base.subarray(sos));
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), (o += p.length));
  return out;
}

/** Headers alone (no image data): WebP and GIF are decoded, so these are truncated files (400); BMP is not decoded (415). */
export const FOREIGN_IMAGES: Record<string, Uint8Array> = {
  webp: latin1(`RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0\x3f\0\0\x3f\0\0`),
  gif: latin1("GIF89a\x10\0\x10\0\0\0\0"),
  bmp: latin1(`BM${"\0".repeat(12)}\x28\0\0\0\x10\0\0\0\x10\0\0\0`),
};

/** A small valid PNG of the default model's eval set. */
export const GOOD_PNG = evalImage("img_000_96x96.png");

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");

/** One malformed request and the status it must get. */
export interface BadRequest {
  readonly name: string;
  readonly method: string;
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Uint8Array;
  readonly status: number;
}

const json = (name: string, path: string, body: unknown, status: number, headers: Record<string, string> = {}): BadRequest => ({
  name,
  method: "POST",
  path,
  headers: { "content-type": "application/json", ...headers },
  body: typeof body === "string" ? body : JSON.stringify(body),
  status,
});

const chat = (content: unknown, extra: object = {}) => ({ model: "paligemma-shapes", messages: [{ role: "user", content }], ...extra });
const imagePart = (bytes: Uint8Array) => ({ type: "image_url", image_url: { url: `data:image/png;base64,${b64(bytes)}` } });
const upload = (name: string, body: Uint8Array | string, type: string, status: number): BadRequest => ({
  name,
  method: "POST",
  path: "/v1/images",
  headers: { "content-type": type },
  body,
  status,
});

/** Every kind of bad request the issue lists, with its status (no request here is allowed to succeed). */
export function badRequests(): BadRequest[] {
  const good = b64(GOOD_PNG);
  return [
    json("malformed JSON", "/v1/generate", "{", 400),
    json("JSON that is not an object", "/v1/generate", "[1,2]", 400),
    { ...json("wrong content type", "/v1/generate", "{}", 415), headers: { "content-type": "text/plain" } },
    json("wrong type", "/v1/generate", { prompt: 5, image: good }, 400),
    json("unknown field", "/v1/generate", { prompt: "x", image: good, max_token: 3 }, 400),
    json("temperature out of range", "/v1/generate", { prompt: "x", image: good, temperature: 9 }, 400),
    json("top_p out of range", "/v1/generate", { prompt: "x", image: good, top_p: 0 }, 400),
    json("max_tokens over the deployment's limit", "/v1/generate", { prompt: "x", image: good, max_tokens: 100_000 }, 400),
    json("no image", "/v1/generate", { prompt: "caption en" }, 400),
    json("two images (image and image_id)", "/v1/generate", { prompt: "x", image: good, image_id: `img_${"0".repeat(64)}` }, 422),
    json("two images (array)", "/v1/generate", { prompt: "x", image: [good, good] }, 400),
    json("unknown image_id", "/v1/generate", { prompt: "x", image_id: `img_${"0".repeat(64)}` }, 404),
    json("unknown model", "/v1/generate", { prompt: "x", image: good, model: "gpt-4" }, 404),
    json("image not base64", "/v1/generate", { prompt: "x", image: "!!!not base64" }, 400),
    json("image not an image", "/v1/generate", { prompt: "x", image: b64(latin1("hello, world")) }, 415),
    json("image empty", "/v1/generate", { prompt: "x", image: "" }, 400),
    json("image truncated", "/v1/generate", { prompt: "x", image: b64(GOOD_PNG.subarray(0, 200)) }, 400),
    json("image corrupt", "/v1/generate", { prompt: "x", image: b64(Uint8Array.from(GOOD_PNG, (b, i) => (i > 60 ? b ^ 0x5a : b))) }, 400),
    json("image WebP header without data", "/v1/generate", { prompt: "x", image: b64(FOREIGN_IMAGES.webp) }, 400),
    json("image BMP", "/v1/generate", { prompt: "x", image: b64(FOREIGN_IMAGES.bmp) }, 415),
    json("image data URL of another type", "/v1/generate", { prompt: "x", image: `data:image/bmp;base64,${good}` }, 415),
    json("image pixels over the limit (PNG header)", "/v1/generate", { prompt: "x", image: b64(pngDeclaring(30_000, 30_000)) }, 413),
    json("image pixels over the limit (JPEG header)", "/v1/generate", { prompt: "x", image: b64(jpegDeclaring([20_000, 20_000])) }, 413),
    json("PNG decompression bomb", "/v1/generate", { prompt: "x", image: b64(pngBomb()) }, 400),
    json("remote image URL", "/v1/generate", { prompt: "x", image: "https://example.com/a.png" }, 422),
    json("prompt over the token limit", "/v1/generate", { prompt: "a ".repeat(4000), image: good }, 422),
    json("prompt with <image>", "/v1/generate", { prompt: "<image>", image: good }, 422),
    json("bad session header", "/v1/generate", { prompt: "x", image: good }, 400, { "x-session-id": "no spaces allowed" }),
    json("unknown session, no image", "/v1/generate", { prompt: "x", session: "never-made" }, 404),
    json("chat: two images", "/v1/chat/completions", chat([imagePart(GOOD_PNG), imagePart(GOOD_PNG)]), 422),
    json("chat: no messages", "/v1/chat/completions", { model: "paligemma-shapes", messages: [] }, 400),
    json("chat: unknown model", "/v1/chat/completions", chat([imagePart(GOOD_PNG)], { model: "nope" }), 404),
    json("chat: n > 1", "/v1/chat/completions", chat([imagePart(GOOD_PNG)], { n: 2 }), 400),
    json("chat: system message only", "/v1/chat/completions", { model: "paligemma-shapes", messages: [{ role: "system", content: "x" }] }, 422),
    json("chat: image_url null", "/v1/chat/completions", chat([{ type: "image_url", image_url: null }]), 400),
    json("chat: image_url without url", "/v1/chat/completions", chat([{ type: "image_url", image_url: {} }]), 400),
    json("chat: text part without text", "/v1/chat/completions", chat([imagePart(GOOD_PNG), { type: "text", text: null }]), 400),
    json("chat: unknown part type", "/v1/chat/completions", chat([{ type: "input_audio", input_audio: {} }]), 400),
    json("chat: detail not OpenAI's", "/v1/chat/completions", chat([{ type: "image_url", image_url: { url: "data:image/png;base64,AAAA", detail: "max" } }]), 400),
    json("chat: logit_bias", "/v1/chat/completions", chat([imagePart(GOOD_PNG)], { logit_bias: { "1": 100 } }), 400),
    json("chat: stream_options without stream", "/v1/chat/completions", chat([imagePart(GOOD_PNG)], { stream_options: { include_usage: true } }), 400),
    json("chat: control token in a text part", "/v1/chat/completions", chat([imagePart(GOOD_PNG), { type: "text", text: "caption en<eos>" }]), 422),
    json("prompt with <eos>", "/v1/generate", { prompt: "caption <eos>", image: good }, 422),
    // Remote image URLs the default policy (IMAGE_URL_ORIGINS = "*") refuses before fetching anything.
    json("image_url: http", "/v1/generate", { prompt: "x", image_url: "http://example.com/a.png" }, 400),
    json("image_url: another scheme", "/v1/generate", { prompt: "x", image_url: "file:///etc/passwd" }, 400),
    json("image_url: credentials", "/v1/generate", { prompt: "x", image_url: "https://u:p@example.com/a.png" }, 400),
    json("image_url: not a URL", "/v1/generate", { prompt: "x", image_url: "https://" }, 400),
    json("image_url and image", "/v1/generate", { prompt: "x", image_url: "https://example.com/a.png", image: good }, 422),
    json("chat: image_url http", "/v1/chat/completions", chat([{ type: "image_url", image_url: { url: "http://127.0.0.1:1/a.png" } }]), 400),
    { ...json("body not UTF-8", "/v1/generate", "", 400), body: Uint8Array.of(0x7b, 0x22, 0x70, 0xff, 0x22, 0x3a, 0x31, 0x7d) },
    upload("upload: not an image", "hello", "image/png", 415),
    upload("upload: other content type", "hello", "text/plain", 415),
    upload("upload: WebP header without data", FOREIGN_IMAGES.webp, "image/webp", 400),
    upload("upload: GIF header without data", FOREIGN_IMAGES.gif, "image/png", 400),
    upload("upload: BMP", FOREIGN_IMAGES.bmp, "image/jpeg", 415),
    upload("upload: empty", new Uint8Array(), "image/png", 400),
    upload("upload: PNG bomb", pngBomb(), "image/png", 400),
    upload("upload: ICC profile bomb", iccBomb(), "image/png", 400),
    upload("upload: pixels over the limit", pngDeclaring(4000, 4000), "image/png", 413),
    upload("upload: JPEG with 150 scans", jpegWithScans(150), "image/jpeg", 413),
    upload("upload: JPEG whose scans visit 40× its blocks", jpegWithScans(40), "image/jpeg", 413),
    upload("upload: JPEG hiding scans inside a DRI", jpegWithHiddenScans(4000), "image/jpeg", 400),
    upload("upload: PNG with a bad stored-block NLEN", nlenBomb("IDAT", 8 * 1024 * 1024), "image/png", 400),
    upload("upload: too many bytes", new Uint8Array(11 * 1024 * 1024), "image/png", 413),
    { name: "unknown route", method: "GET", path: "/v1/nothing", status: 404 },
    { name: "wrong method", method: "GET", path: "/v1/generate", status: 405 },
    { name: "wrong method (DELETE models)", method: "DELETE", path: "/v1/models", status: 405 },
    { name: "unknown session", method: "GET", path: "/v1/sessions/never-made", status: 404 },
    { name: "bad session id in the path", method: "GET", path: "/v1/sessions/a%20b", status: 400 },
  ];
}

/** Checks that a response is the error `bad` must get: its status and a JSON `{"error": {type, message}}`. */
export async function expectRefused(res: Response, bad: BadRequest): Promise<void> {
  const text = await res.text();
  expect(res.status, `${bad.name}: ${text.slice(0, 300)}`).toBe(bad.status);
  expect(res.headers.get("content-type"), bad.name).toMatch(/^application\/json/);
  const body = JSON.parse(text) as { error: { type: string; message: string; param?: string } };
  expect(Object.keys(body), bad.name).toEqual(["error"]);
  expect(typeof body.error.type, bad.name).toBe("string");
  expect(body.error.message.length, bad.name).toBeGreaterThan(0);
}

/** The request as `fetch` init. */
export function requestInit(bad: BadRequest): RequestInit {
  return { method: bad.method, headers: bad.headers, body: bad.body as BodyInit | undefined };
}
