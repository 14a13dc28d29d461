import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { InputError } from "../../shared/errors.ts";
import { decodeImage } from "../../shared/image/index.ts";
import { SHAPES_MODEL } from "../helpers/golden.ts";
import { losslessWebp } from "../helpers/webp-encode.ts";

/**
 * WebP and GIF against Pillow 9.4.0 (the goldens' version): test/fixtures/images/make-webp-gif.py wrote the files
 * and Pillow's `Image.open(f).convert("RGB")` of frame 0, or Pillow's refusal.
 */

const FIXTURE = new URL("../fixtures/images/pillow-webp-gif.json", import.meta.url);
const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "base64"));
const LIMITS = { maxPixels: 1 << 20 };

interface Verdict { rgb?: string; size?: [number, number]; error?: "truncated" | "broken" | "unidentified" }
interface WebpCase extends Verdict { name: string; webp: string; png?: string }
interface GifCase extends Verdict { name: string; gif: string }
const doc = JSON.parse(readFileSync(FIXTURE, "utf8")) as {
  generator: string;
  webp: WebpCase[];
  gif: GifCase[];
  gif_fuzz: (Verdict & { gif: string })[];
  gif_lzw: GifCase[];
  webp_fuzz: { webp: string; rgb?: string; size?: [number, number]; error?: string }[];
};

/** Count of differing bytes and the first index that differs (-1 if none). */
function compare(got: Uint8Array, want: Uint8Array): { count: number; first: number } {
  let [count, first] = [0, -1];
  for (let i = 0; i < Math.max(got.length, want.length); i++) {
    if (got[i] !== want[i]) (count++, first < 0 && (first = i));
  }
  return { count, first };
}

async function expectPillowPixels(bytes: Uint8Array, c: Verdict): Promise<void> {
  const img = await decodeImage(bytes, LIMITS);
  expect([img.width, img.height]).toEqual(c.size);
  const { count, first } = compare(img.data, b64(c.rgb!));
  expect(count, `first difference at byte ${first}`).toBe(0);
}

describe("WebP decodes to Pillow's pixels", () => {
  it("has the fixture cases, made with Pillow 9.4.0", () => {
    expect(doc.generator).toMatch(/^Pillow 9\.4\.0 /);
    expect(doc.webp.map((c) => c.name)).toEqual([
      "lossy", "lossy-alpha", "lossless-of-png", "lossless-alpha-of-png", "animated-pillow", "animated-offset-lossless", "animated-offset-lossy-alpha",
    ]);
  });

  it.each(doc.webp.map((c) => [c.name, c] as const))("%s", async (_, c) => {
    expect(c.error).toBeUndefined();
    await expectPillowPixels(b64(c.webp), c);
  });

  it.each(doc.webp.filter((c) => c.png).map((c) => [c.name, c] as const))("%s: exactly the PNG's pixels (alpha dropped alike)", async (_, c) => {
    const [webp, png] = [await decodeImage(b64(c.webp), LIMITS), await decodeImage(b64(c.png!), LIMITS)];
    expect([webp.width, webp.height]).toEqual([png.width, png.height]);
    expect(compare(webp.data, png.data).count).toBe(0);
  });

  it("an animated WebP's first frame sits at its offset on a black canvas", async () => {
    const c = doc.webp.find((w) => w.name === "animated-offset-lossless")!;
    const img = await decodeImage(b64(c.webp), LIMITS);
    expect(Array.from(img.data.subarray(0, 3 * 23 * 6)).every((v) => v === 0)).toBe(true); // rows above the frame (y = 6)
    expect(Array.from(img.data.subarray(3 * (6 * 23 + 4), 3 * (6 * 23 + 13))).some((v) => v !== 0)).toBe(true);
  });
});

describe("GIF decodes frame 0 to Pillow's pixels", () => {
  it("has the fixture cases", () => {
    expect(doc.gif.map((c) => c.name)).toEqual([
      "pillow-interlaced-transparent", "pillow-96x64-256-colours", "local-table-offset-transparent-interlaced", "frame-past-screen",
      "short-palette", "no-palette", "local-over-global", "animated-pillow", "trailing-data", "no-trailer",
    ]);
    expect(doc.gif.find((c) => c.name === "frame-past-screen")!.size).toEqual([15, 13]); // the 10×8 screen grown to the frame
  });

  it.each(doc.gif.map((c) => [c.name, c] as const))("%s", async (_, c) => {
    expect(c.error).toBeUndefined();
    await expectPillowPixels(b64(c.gif), c);
  });

  it("a first frame that grows the image past the pixel limit is refused with 413", async () => {
    const c = doc.gif.find((g) => g.name === "frame-past-screen")!;
    const err = await decodeImage(b64(c.gif), { maxPixels: 10 * 8 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).type).toBe("payload_too_large");
    expect((err as InputError).message).toBe("image is 15×13 = 195 pixels (its first frame reaches past the 10×8 screen), over the limit of 80");
  });
});

describe("WebP fuzz cases (cuts, RIFF size lies, flipped bytes, trailing data) get Pillow's verdict", () => {
  it("covers both verdicts", () => {
    expect(doc.webp_fuzz.filter((c) => c.error).length).toBeGreaterThan(30);
    expect(doc.webp_fuzz.filter((c) => !c.error).length).toBeGreaterThan(30);
  });

  it.each(doc.webp_fuzz.map((c, i) => [i, c] as const))("case %i", async (_, c) => {
    const bytes = b64(c.webp);
    if (!c.error) return expectPillowPixels(bytes, c as Verdict);
    const err = await decodeImage(bytes, LIMITS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).type).toBe("invalid_request");
    expect((err as InputError).message).toMatch(/^(could not decode the WebP image|image is truncated or corrupt: WebP header)/);
  });
});

/** Pillow's verdict on `bytes`: its pixels, or a 400 whose message names the kind of refusal. */
async function expectVerdict(bytes: Uint8Array, c: Verdict): Promise<void> {
  if (!c.error) return expectPillowPixels(bytes, c);
  const err = await decodeImage(bytes, LIMITS).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(InputError);
  expect((err as InputError).type).toBe("invalid_request");
  const want = { truncated: /truncated/, broken: /LZW data is broken/, unidentified: /truncated|cut short|too short/ }[c.error];
  expect((err as InputError).message).toMatch(want);
}

describe("hand-written LZW streams get Pillow's verdict", () => {
  it("has the cases", () => expect(doc.gif_lzw.length).toBe(15));
  it.each(doc.gif_lzw.map((c) => [c.name, c] as const))("%s", (_, c) => expectVerdict(b64(c.gif), c));
});

describe("GIF fuzz cases get Pillow's verdict", () => {
  const verdicts = (doc.gif_fuzz as (Verdict & { gif: string })[]).map((c, i) => [i, c] as const);

  it("covers every verdict", () => {
    const kinds = new Set(doc.gif_fuzz.map((c) => c.error ?? "ok"));
    expect([...kinds].sort()).toEqual(["broken", "ok", "truncated", "unidentified"]);
  });

  it.each(verdicts)("case %i", (_, c) => expectVerdict(b64(c.gif), c));
});

describe("a lossless WebP made here (libwebp's encoder) gives its source's pixels", () => {
  it("the shapes eval PNG, opaque and with every other pixel transparent", async () => {
    const png = await decodeImage(new Uint8Array(readFileSync(join(SHAPES_MODEL, "eval/img_001_160x120.png"))), LIMITS);
    const alpha = new Uint8Array(png.width * png.height).map((_, i) => (i % 2 ? 0 : 255));
    for (const a of [undefined, alpha]) {
      const webp = await decodeImage(await losslessWebp(png, a), LIMITS);
      expect([webp.width, webp.height]).toEqual([160, 120]);
      expect(compare(webp.data, png.data).count).toBe(0);
    }
  });
});
