/**
 * JPEG decoding equals Pillow's (libjpeg-turbo, accurate integer IDCT, fancy upsampling) byte for byte, and the
 * SigLIP pixel values made from it equal transformers' at 96 and 224 (../shared/golden-jpeg: 4:2:0, 4:4:4,
 * progressive, greyscale).
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodeImage, preprocessImage } from "../../shared/image/index.ts";
import { readF32, SHARED } from "../helpers/golden.ts";

const DIR = join(SHARED, "golden-jpeg");
const cases = JSON.parse(readFileSync(join(DIR, "cases.json"), "utf8")).cases as {
  name: string;
  file: string;
  width: number;
  height: number;
  sha256: Record<string, string>;
}[];
const read = (file: string) => new Uint8Array(readFileSync(join(DIR, file)));
const SIGLIP = { rescale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] } as const;

describe("JPEG = Pillow", () => {
  it("has the four golden cases, their files as recorded", () => {
    expect(cases.map((c) => c.name).sort()).toEqual(["gray-q85", "photo-420-q90", "photo-progressive-q75", "sharp-444-q95"]);
    for (const c of cases) {
      for (const [file, sha] of Object.entries(c.sha256)) expect(createHash("sha256").update(read(file)).digest("hex"), file).toBe(sha);
    }
  });

  it.each(cases.map((c) => [c.name, c] as const))("%s: RGB bytes equal Pillow's decode", async (_, c) => {
    const img = await decodeImage(read(c.file), { maxPixels: 1 << 22 });
    expect([img.width, img.height]).toEqual([c.width, c.height]);
    const want = read(`${c.name}.rgb.u8`);
    let diffs = 0;
    for (let i = 0; i < want.length; i++) if (img.data[i] !== want[i]) diffs++;
    expect(diffs).toBe(0);
  });

  it.each(cases.flatMap((c) => [96, 224].map((size) => [`${c.name} at ${size}`, c, size] as const)))(
    "%s: pixel values equal transformers' exactly",
    async (_, c, size) => {
      const got = await preprocessImage(read(c.file), { size, ...SIGLIP }, { maxPixels: 1 << 22 });
      const want = readF32(join(DIR, `${c.name}.pv${size}.f32`));
      expect(got.length).toBe(want.length);
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
      expect(worst).toBe(0);
    },
  );
});
