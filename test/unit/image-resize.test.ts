import { describe, expect, it } from "vitest";
import { resizeBicubic, toPixelValues, type RgbImage } from "../../shared/image/index.ts";

/** A W×H image whose pixel (x, y) is `f(x, y)` = [r, g, b]. */
function makeImage(width: number, height: number, f: (x: number, y: number) => readonly number[]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set(f(x, y), (y * width + x) * 3);
  }
  return { width, height, data };
}

/** Red channel of an image, row-major. */
const reds = (img: RgbImage): number[] => Array.from({ length: img.width * img.height }, (_, i) => img.data[3 * i]);

/** Index of the first differing byte, or -1 (vitest's deep equality is slow on large arrays). */
function firstMismatch(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

const PALIGEMMA = { rescale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] } as const;

describe("resizeBicubic", () => {
  it("is the identity (a copy) when the size does not change", () => {
    const img = makeImage(96, 96, (x, y) => [(x * 7 + y) & 255, (x * y) & 255, (255 - x) & 255]);
    const out = resizeBicubic(img, 96, 96);
    expect(firstMismatch(out.data, img.data)).toBe(-1);
    expect(out.data).not.toBe(img.data);
  });

  it.each([
    [37, 23, 224, 224],
    [640, 480, 224, 224],
    [5, 300, 56, 56],
    [1, 1, 7, 3],
  ])("keeps a constant image constant (%i×%i → %i×%i)", (w, h, ow, oh) => {
    const img = makeImage(w, h, () => [200, 17, 0]);
    const out = resizeBicubic(img, ow, oh);
    expect([out.width, out.height]).toEqual([ow, oh]);
    const want = makeImage(ow, oh, () => [200, 17, 0]).data;
    expect(firstMismatch(out.data, want)).toBe(-1);
  });

  // Worked by hand from the README's formulas (taps, Keys a = -0.5, 22-bit fixed point):
  // upscale 2 → 4 of [0, 255]: centres 0.25, 0.75 → weights of 255 are -0.088, 0.207 → [0, 53, 202, 255];
  // downscale 4 → 2 of [0, 0, 255, 255]: kernel widened ×2, centre 1 → (0.2266 - 0.0703) / 1.8906 → [21, 234].
  it.each([
    [[0, 255], [0, 53, 202, 255]],
    [[0, 0, 255, 255], [21, 234]],
  ])("matches hand-computed Pillow values %j → %j, horizontally and vertically", (input, want) => {
    const row = makeImage(input.length, 1, (x) => [input[x], input[x], input[x]]);
    expect(reds(resizeBicubic(row, want.length, 1))).toEqual(want);
    const column = makeImage(1, input.length, (_, y) => [input[y], 0, 0]);
    expect(reds(resizeBicubic(column, 1, want.length))).toEqual(want);
  });

  it("clamps the overshoot of sharp edges to [0, 255] between the passes", () => {
    const img = makeImage(9, 9, (x, y) => ((x + y) % 2 ? [255, 255, 255] : [0, 0, 0]));
    const out = resizeBicubic(img, 20, 20);
    expect(Math.min(...out.data)).toBe(0);
    expect(Math.max(...out.data)).toBe(255);
  });

  it("resizes 4000×3000 → 224×224 in well under a second", () => {
    const data = new Uint8Array(4000 * 3000 * 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24; // pseudo-random bytes
    const img: RgbImage = { width: 4000, height: 3000, data };
    resizeBicubic(makeImage(64, 48, () => [1, 2, 3]), 224, 224); // warm up the JIT
    let ms = Infinity; // best of 3: parallel test files share the CPU
    let out: RgbImage | undefined;
    for (let run = 0; run < 3; run++) {
      const t0 = performance.now();
      out = resizeBicubic(img, 224, 224);
      ms = Math.min(ms, performance.now() - t0);
    }
    console.info(`[resize] 4000×3000 → 224×224 in ${ms.toFixed(0)} ms (best of 3)`);
    expect(out!.data.length).toBe(224 * 224 * 3);
    expect(ms).toBeLessThan(1000);
  });

  it("rejects bad sizes and inconsistent data", () => {
    const img = makeImage(2, 2, () => [0, 0, 0]);
    expect(() => resizeBicubic(img, 0, 5)).toThrow(RangeError);
    expect(() => resizeBicubic(img, 2.5, 5)).toThrow(RangeError);
    expect(() => resizeBicubic({ width: 2, height: 2, data: new Uint8Array(11) }, 4, 4)).toThrow(RangeError);
  });
});

describe("toPixelValues", () => {
  it("lays out float32[1, 3, S, S] channels first with the float32 values numpy gives", () => {
    const img = makeImage(2, 2, (x, y) => [0, 128, 255].map((v) => (v + x + 2 * y) & 255));
    const px = toPixelValues(img, { size: 2, ...PALIGEMMA });
    expect(px).toBeInstanceOf(Float32Array);
    expect(px.length).toBe(12);
    // numpy: ((np.float64(v) * (1/255)).astype(np.float32) - np.float32(.5)) / np.float32(.5)
    const f = (v: number) => Math.fround(Math.fround(Math.fround(v / 255) - 0.5) / 0.5);
    expect(Array.from(px)).toEqual([0, 1, 2, 3, 128, 129, 130, 131, 255, 0, 1, 2].map(f));
    expect(px[0]).toBe(-1);
    expect(px[8]).toBe(1);
    // 128: f32(128/255) = 0.50196081, minus 0.5 in float32 → 0.0039216280 (float64 math gives 0.0039215686)
    expect(px[4]).toBe(0.003921627998352051);
  });

  it("resizes to S×S first when needed", () => {
    const img = makeImage(30, 10, () => [255, 0, 128]);
    const px = toPixelValues(img, { size: 14, ...PALIGEMMA });
    expect(px.length).toBe(3 * 14 * 14);
    expect(px[0]).toBe(1);
    expect(px[14 * 14]).toBe(-1);
  });
});
