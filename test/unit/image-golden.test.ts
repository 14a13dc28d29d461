import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodeImage, preprocessImage, type PreprocessSettings } from "../../shared/image/index.ts";

/**
 * Golden parity: our decode → Pillow-exact bicubic → rescale/normalise against transformers'
 * SiglipImageProcessor output (`pixel_values.bin`, float32 LE [1, 3, S, S]) for each golden case.
 * A missing golden file fails the test (readFileSync throws); nothing is skipped.
 */

const GOLDEN = "/work/shared/golden";
const EVAL = "/work/shared/models/paligemma-shapes/eval";
const CASES = ["paligemma1-tiny", "paligemma2-tiny", "paligemma-shapes"] as const;
const LIMITS = { maxPixels: 4096 * 4096 };

interface GoldenMeta {
  image_preprocessing: {
    size: { height: number; width: number };
    rescale_factor: number;
    image_mean: [number, number, number];
    image_std: [number, number, number];
  };
  files: { pixel_values: { shape: number[]; dtype: string } };
}

function readFloat32(path: string): Float32Array {
  const bytes = readFileSync(path);
  const copy = new Uint8Array(bytes); // aligned copy
  return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
}

/** Largest |a - b| and where it is, as "index i = (c, y, x)". */
function worstDiff(got: Float32Array, want: Float32Array, size: number): { max: number; where: string } {
  let max = 0;
  let at = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= max)) {
      max = d; // NaN also lands here and fails the bound below
      at = i;
    }
  }
  const plane = size * size;
  const where = `index ${at} = (c ${Math.floor(at / plane)}, y ${Math.floor((at % plane) / size)}, x ${at % size}): got ${got[at]}, want ${want[at]}`;
  return { max, where };
}

describe.each(CASES)("golden pixel_values: %s", (name) => {
  it("preprocesses image.png exactly like transformers (max abs diff ≤ 1e-6)", async () => {
    const dir = join(GOLDEN, name);
    const meta = JSON.parse(readFileSync(join(dir, "meta.json"), "utf8")) as GoldenMeta;
    const pre = meta.image_preprocessing;
    expect(pre.size.height).toBe(pre.size.width);
    const settings: PreprocessSettings = {
      size: pre.size.height,
      rescale: pre.rescale_factor,
      mean: pre.image_mean,
      std: pre.image_std,
    };
    if (name === "paligemma-shapes") expect(settings.size).toBe(96);
    expect(meta.files.pixel_values.dtype).toBe("float32");
    expect(meta.files.pixel_values.shape).toEqual([1, 3, settings.size, settings.size]);

    const want = readFloat32(join(dir, "pixel_values.bin"));
    const got = await preprocessImage(new Uint8Array(readFileSync(join(dir, "image.png"))), settings, LIMITS);
    expect(got.length).toBe(3 * settings.size * settings.size);
    expect(want.length).toBe(got.length);
    const { max, where } = worstDiff(got, want, settings.size);
    console.info(`[golden ${name}] pixel_values max abs diff ${max}`);
    expect(max, `worst at ${where}`).toBeLessThanOrEqual(1e-6);
  });
});

describe("paligemma-shapes eval images", () => {
  const files = readdirSync(EVAL).filter((f) => f.endsWith(".png")).sort();

  it("has all 24 eval PNGs", () => {
    expect(files).toHaveLength(24);
  });

  it.each(files)("%s decodes to the size in its name", async (file) => {
    const m = /_(\d+)x(\d+)\.png$/.exec(file);
    expect(m, `no WxH in ${file}`).not.toBeNull();
    const img = await decodeImage(new Uint8Array(readFileSync(join(EVAL, file))), LIMITS);
    expect([img.width, img.height]).toEqual([Number(m![1]), Number(m![2])]);
    expect(img.data.length).toBe(img.width * img.height * 3);
  });
});
