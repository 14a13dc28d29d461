import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { decodeImage, resizeBicubic } from "../../shared/image/index.ts";

/**
 * Parity with Pillow beyond the goldens (which only downscale, from PNG RGB): upscaling, one-axis
 * resizes and extreme ratios, and PNG modes as Pillow itself writes them. The fixtures were made with
 * Pillow 11.3.0 (9.4.0 was not installable); its uint8 BICUBIC resampler and these PNG mode
 * conversions give the same bytes as 9.4, which the goldens (made with 9.4) also pin down.
 */

const FIXTURES = new URL("../fixtures/images/", import.meta.url);
const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "base64"));

interface ResizeCase { width: number; height: number; outWidth: number; outHeight: number; input: string; output: string }
interface PngCase { file: string; mode: string; png: string; rgb: string }

const resizeCases = (JSON.parse(readFileSync(new URL("pillow-bicubic.json", FIXTURES), "utf8")) as { cases: ResizeCase[] }).cases;
const pngCases = (JSON.parse(readFileSync(new URL("pillow-png-modes.json", FIXTURES), "utf8")) as { cases: PngCase[] }).cases;

/** Count of differing bytes and the first index that differs (-1 if none). */
function compare(got: Uint8Array, want: Uint8Array): { count: number; first: number } {
  let count = 0;
  let first = -1;
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) {
      count++;
      if (first < 0) first = i;
    }
  }
  return { count, first };
}

describe("resizeBicubic is byte-identical to Pillow's Image.resize(BICUBIC)", () => {
  it("has the fixture cases", () => expect(resizeCases.length).toBe(6));

  it.each(resizeCases.map((c) => [`${c.width}×${c.height} → ${c.outWidth}×${c.outHeight}`, c] as const))("%s", (_, c) => {
    const want = b64(c.output);
    const got = resizeBicubic({ width: c.width, height: c.height, data: b64(c.input) }, c.outWidth, c.outHeight).data;
    expect(got.length).toBe(want.length);
    const { count, first } = compare(got, want);
    expect(count, `first difference at byte ${first}: got ${got[first]}, want ${want[first]}`).toBe(0);
  });
});

describe("decodeImage matches Pillow's Image.open(png).convert('RGB')", () => {
  it("has the fixture cases", () => expect(pngCases.length).toBe(7));

  it.each(pngCases.map((c) => [`${c.file} (mode ${c.mode})`, c] as const))("%s", async (_, c) => {
    const img = await decodeImage(b64(c.png), { maxPixels: 1 << 20 });
    expect([img.width, img.height]).toEqual([23, 17]);
    const { count, first } = compare(img.data, b64(c.rgb));
    expect(count, `first difference at byte ${first}`).toBe(0);
  });
});
