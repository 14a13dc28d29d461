/**
 * Placing masks in their boxes: the demo convention's entries of ../shared/golden-vqvae/placement.json (the one
 * our detections use: loc / 1024, round half to even) reproduced exactly — pixel box, the 64×64 uint8 image
 * (by sha256), and the Pillow-BICUBIC resized box byte for byte — then the threshold and the whole-image mask.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { demoPixelBox, maskToUint8, MASK_THRESHOLD_U8, placeMask, resizeIntoBox, roundHalfEven } from "../../shared/masks/placement.ts";
import { LOC_BINS, locBox } from "../../shared/tasks/loc-answer.ts";
import { loadVqvaeGolden } from "./support.ts";

const golden = loadVqvaeGolden();
const size = { width: golden.placement.image_width, height: golden.placement.image_height };
const raw = (i: number) => golden.masks.subarray(i * 4096, (i + 1) * 4096);

describe("mask placement (demo convention)", () => {
  it("rounds halves to even, as Python's round()", () => {
    expect([0.5, 1.5, 2.5, -1.5, 2.4999, 2.5001, 3].map(roundHalfEven)).toEqual([0, 2, 2, -2, 2, 3, 3]);
  });

  for (const ex of golden.placement.examples) {
    it(`case ${ex.case}: box, 64×64 uint8 image and resized box equal placement.json's demo entry exactly`, () => {
      const [y1, x1, y2, x2] = ex.loc_tokens_y1_x1_y2_x2;
      const { box_normalized } = locBox([y1, x1, y2, x2], size);
      expect(box_normalized.x1).toBe(x1 / LOC_BINS);
      const px = demoPixelBox(box_normalized, size);
      expect([px.y1, px.x1, px.y2, px.x2]).toEqual(ex.demo.box_pixels_y1_x1_y2_x2);
      const u8 = maskToUint8(raw(ex.case));
      expect(createHash("sha256").update(u8).digest("hex")).toBe(ex.demo.mask64_uint8_sha256);
      const resized = resizeIntoBox(raw(ex.case), px)!;
      expect([px.y2 - px.y1, px.x2 - px.x1]).toEqual(ex.demo.resized_shape_hw);
      const want = new Uint8Array(Buffer.from(ex.demo.resized_uint8_base64, "base64"));
      const differing = resized.reduce((n, v, i) => n + (v !== want[i] ? 1 : 0), 0);
      expect(differing, "pixels that differ from Pillow's").toBe(0);
      expect(resized.length).toBe(want.length);
      expect(resized.reduce((a, v) => a + v, 0)).toBe(ex.demo.resized_uint8_sum);

      const mask = placeMask(raw(ex.case), box_normalized, size);
      let inside = 0;
      let outsideBox = 0;
      for (let y = 0; y < size.height; y++) {
        for (let x = 0; x < size.width; x++) {
          const v = mask[y * size.width + x];
          const inBox = y >= px.y1 && y < px.y2 && x >= px.x1 && x < px.x2;
          if (!inBox) outsideBox += v;
          else expect(v).toBe(want[(y - px.y1) * (px.x2 - px.x1) + (x - px.x1)] >= MASK_THRESHOLD_U8 ? 1 : 0);
          inside += v;
        }
      }
      expect(outsideBox).toBe(0);
      expect(inside).toBe(want.filter((v) => v >= 128).length);
      expect(inside).toBeGreaterThan(0);
    });
  }

  it("thresholds at 128 of 255, which is raw > 0 through the demo's 0.5·raw + 0.5", () => {
    expect(Array.from(maskToUint8(Float32Array.of(-5, -1, 0, 0.004, 0.0039, 1, 7)))).toEqual([0, 0, 127, 128, 127, 255, 255]);
    expect(MASK_THRESHOLD_U8).toBe(128);
  });

  it("gives an all-zero image when the rounded box is empty", () => {
    const box = { x1: 10 / 1024, y1: 10 / 1024, x2: 11 / 1024, y2: 12 / 1024 }; // < half a pixel wide at 150×200
    expect(placeMask(raw(0), box, size).some((v) => v !== 0)).toBe(false);
  });

  it("keeps the decoder's orientation: the L case's mask is an L in the lower left of its box", () => {
    const full = { x1: 0, y1: 0, x2: 1023 / 1024, y2: 1023 / 1024 };
    const mask = placeMask(raw(2), full, size);
    const at = (fx: number, fy: number) => mask[Math.floor(fy * size.height) * size.width + Math.floor(fx * size.width)];
    expect([at(0.1, 0.5), at(0.5, 0.93), at(0.1, 0.93)]).toEqual([1, 1, 1]);
    expect(at(0.6, 0.3)).toBe(0);
  });
});
