/**
 * Inside workerd: the image decoders (our PNG decoder on workerd's zlib, libjpeg-turbo and libwebp as compiled WASM
 * modules, our GIF decoder) give Pillow's pixels, and the structure-aware fuzzers of test/fuzz/ find every case refused with a 4xx or
 * decoded to its declared size. (workerd's clock does not advance while a request computes, so time budgets are
 * checked in the Node run, test/hardening/image-structure-fuzz.test.ts; here a hang fails the test's timeout.)
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import jpegDecoder from "../../node_modules/@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm";
import webpDecoder from "../../node_modules/@jsquash/webp/codec/dec/webp_dec.wasm";
import { decodeImage, provideImageCodecs } from "../../shared/image/index.ts";
import { deflate } from "../fuzz/bytes.ts";
import { decodesOrRefuses } from "../fuzz/check.ts";
import { gifFiles } from "../fuzz/gif-structures.ts";
import { jpegFiles } from "../fuzz/jpeg-structures.ts";
import { pngFiles } from "../fuzz/png-structures.ts";
import { webpFiles } from "../fuzz/webp-structures.ts";
import { fromBase64 } from "./support.ts";

const SEED = 20261202;
// As functions/vision/deps.ts does: libjpeg-turbo and libwebp as modules compiled when the worker loaded.
provideImageCodecs({ jpeg: jpegDecoder, webp: webpDecoder });

interface PillowCase { name: string; webp?: string; gif?: string; rgb?: string; size?: [number, number] }
const PILLOW = JSON.parse(env.PILLOW_WEBP_GIF) as { webp: PillowCase[]; gif: PillowCase[] };
const file = (c: PillowCase): Uint8Array => fromBase64(c.webp ?? c.gif ?? "");
const seeds = (cases: PillowCase[], names: string[]): Uint8Array[] => names.map((n) => file(cases.find((c) => c.name === n)!));

describe("image decoding in workerd", () => {
  it("every WebP and GIF fixture decodes to Pillow's bytes exactly", async () => {
    const cases = [...PILLOW.webp, ...PILLOW.gif];
    expect(cases.length).toBe(17);
    for (const c of cases) {
      const img = await decodeImage(file(c), { maxPixels: 1e6 });
      expect([img.width, img.height], c.name).toEqual(c.size);
      const want = fromBase64(c.rgb!);
      expect(img.data.length, c.name).toBe(want.length);
      expect(img.data.every((v, i) => v === want[i]), c.name).toBe(true);
    }
  });

  it("WebP and GIF structure fuzzing: refused with a 4xx or decoded", async () => {
    const webp = seeds(PILLOW.webp, ["lossy-alpha", "lossless-of-png", "animated-offset-lossy-alpha"]);
    const gif = seeds(PILLOW.gif, ["pillow-interlaced-transparent", "local-table-offset-transparent-interlaced"]);
    const outcomes: Record<string, number> = {};
    await fc.assert(
      fc.asyncProperty(fc.oneof(webpFiles(webp), gifFiles(gif)), async (bytes) => {
        const o = await decodesOrRefuses(bytes);
        outcomes[o] = (outcomes[o] ?? 0) + 1;
      }),
      { numRuns: 250, seed: SEED, endOnFailure: true },
    );
    expect(outcomes.decoded).toBeGreaterThan(25);
    expect(outcomes.refused).toBeGreaterThan(25);
  });

  it("a progressive JPEG decodes to Pillow's bytes exactly", async () => {
    const img = await decodeImage(fromBase64(env.GOLDEN_JPEG_PROGRESSIVE), { maxPixels: 1e6 });
    expect([img.width, img.height]).toEqual([500, 333]);
    const want = fromBase64(env.GOLDEN_JPEG_PROGRESSIVE_RGB);
    expect(img.data.length).toBe(want.length);
    expect(img.data.every((v, i) => v === want[i])).toBe(true);
  });

  it("PNG structure fuzzing: refused with a 4xx or decoded", async () => {
    const bomb = await deflate(new Uint8Array(4 << 20));
    const outcomes: Record<string, number> = {};
    await fc.assert(
      fc.asyncProperty(pngFiles([fromBase64(env.EVAL_IMAGE_000), fromBase64(env.EVAL_IMAGE_001)], bomb), async (bytes) => {
        const o = await decodesOrRefuses(bytes);
        outcomes[o] = (outcomes[o] ?? 0) + 1;
      }),
      { numRuns: 250, seed: SEED, endOnFailure: true },
    );
    expect(outcomes.decoded).toBeGreaterThan(25);
    expect(outcomes.refused).toBeGreaterThan(25);
  });

  it("JPEG structure fuzzing: refused with a 4xx or decoded", async () => {
    const seeds = [env.GOLDEN_JPEG_PROGRESSIVE, env.GOLDEN_JPEG_444, env.GOLDEN_JPEG_GRAY].map(fromBase64);
    const outcomes: Record<string, number> = {};
    await fc.assert(
      fc.asyncProperty(jpegFiles(seeds), async (bytes) => {
        const o = await decodesOrRefuses(bytes);
        outcomes[o] = (outcomes[o] ?? 0) + 1;
      }),
      { numRuns: 200, seed: SEED, endOnFailure: true },
    );
    expect(outcomes.decoded).toBeGreaterThan(20);
    expect(outcomes.refused).toBeGreaterThan(20);
  });
});
