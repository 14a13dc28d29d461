/**
 * COCO compressed RLE: the strings pycocotools 2.0.11 made for test/fixtures/masks/pycocotools-rle.json
 * (its make script is beside it), reproduced exactly, and every mask coming back unchanged from its string.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodeCocoRle, encodeCocoRle, runLengths, stringToCounts } from "../../shared/masks/coco-rle.ts";
import { placeMask } from "../../shared/masks/placement.ts";
import { REPO } from "../helpers/golden.ts";
import { loadVqvaeGolden } from "./support.ts";

interface RleCase {
  readonly name: string;
  readonly size: [number, number];
  readonly mask_packbits_base64: string;
  readonly area: number;
  readonly counts: string;
}

const FIXTURE: { cases: RleCase[] } = JSON.parse(readFileSync(join(REPO, "test/fixtures/masks/pycocotools-rle.json"), "utf8"));

/** numpy.unpackbits of a row-major mask (most significant bit first). */
function unpack(c: RleCase): Uint8Array {
  const bytes = Buffer.from(c.mask_packbits_base64, "base64");
  const [h, w] = c.size;
  return Uint8Array.from({ length: h * w }, (_, i) => (bytes[i >> 3] >> (7 - (i & 7))) & 1);
}

describe("COCO RLE", () => {
  it("has fixtures with long runs, negative differences and a first pixel set", () => {
    expect(FIXTURE.cases.length).toBeGreaterThanOrEqual(8);
    expect(FIXTURE.cases.some((c) => c.counts.startsWith("0"))).toBe(true);
  });

  for (const c of FIXTURE.cases) {
    it(`${c.name}: the string pycocotools writes, and back`, () => {
      const [h, w] = c.size;
      const mask = unpack(c);
      const rle = encodeCocoRle(mask, w, h);
      expect(rle).toEqual({ size: [h, w], counts: c.counts });
      expect(Array.from(decodeCocoRle(rle))).toEqual(Array.from(mask));
      const counts = stringToCounts(c.counts);
      expect(counts).toEqual(runLengths(mask, w, h));
      expect(counts.filter((_, i) => i % 2 === 1).reduce((a, n) => a + n, 0)).toBe(c.area);
    });
  }

  it("round-trips the golden's placed masks (150×200 images)", () => {
    const golden = loadVqvaeGolden();
    const size = { width: golden.placement.image_width, height: golden.placement.image_height };
    for (const ex of golden.placement.examples) {
      const [y1, x1, y2, x2] = ex.loc_tokens_y1_x1_y2_x2.map((v) => v / 1024);
      const mask = placeMask(golden.masks.subarray(ex.case * 4096, (ex.case + 1) * 4096), { x1, y1, x2, y2 }, size);
      const rle = encodeCocoRle(mask, size.width, size.height);
      expect(rle.size).toEqual([150, 200]);
      expect(decodeCocoRle(rle)).toEqual(mask);
    }
  });

  it("refuses strings that do not cover the size", () => {
    expect(() => decodeCocoRle({ size: [2, 2], counts: "12" })).toThrow(/cover 3 pixels, the size says 2×2/);
    expect(() => decodeCocoRle({ size: [2, 2], counts: "5" })).toThrow(/exceed 2×2/);
    expect(() => decodeCocoRle({ size: [2, 2], counts: "1\u0100" })).toThrow(/invalid COCO RLE character/);
  });
});
