/**
 * Putting a decoded 64×64 mask into its object's box in the original image (docs/model-notes.md,
 * "The VQ-VAE mask decoder"). The notes describe two conventions; this follows the **demo Space's**
 * (`paligemma_parse.py`), because it is the one our detections use (shared/tasks/loc-answer.ts: v = loc / 1024
 * of the side, the shapes model's convention too), so a segment's mask lies in the same box as its detection:
 *
 *   1. pixel box = Python round() (half to even) of (y1·H, x1·W, y2·H, x2·W), with v = loc / 1024;
 *   2. m = clip(raw·0.5 + 0.5, 0, 1) in float32, then uint8 = trunc(m·255)      [64, 64]
 *   3. Pillow's BICUBIC resize (mode "L", fixed point) to (x2 − x1) × (y2 − y1)  [h, w] uint8
 *   4. written at rows y1:y2, columns x1:x2 of a zero image, only if the box is not empty.
 *
 * The demo stops there (a soft overlay). Our masks are binary: a pixel is inside when its resized value ÷ 255
 * exceeds 0.5, i.e. uint8 ≥ {@link MASK_THRESHOLD_U8}. That is big_vision's rule, raw > 0 ("inside";
 * segmentation.py `Evaluator.run`), carried through the demo's m = 0.5·raw + 0.5 scale.
 */
import { resizeBicubicGray } from "../image/resize.ts";
import { VAE_MASK_SIZE } from "./vae-weights.ts";

/** A pixel is inside when its resized uint8 value is at least this: value / 255 > 0.5 ⇔ value ≥ 128. */
export const MASK_THRESHOLD_U8 = 128;

/** An image size in pixels. */
export interface PixelSize {
  readonly width: number;
  readonly height: number;
}

/** Normalised box coordinates (loc / 1024), as `box_normalized` of a segment. */
export interface NormalizedBox {
  readonly x1: number;
  readonly y1: number;
  readonly x2: number;
  readonly y2: number;
}

/** Integer pixel box: rows y1..y2 − 1, columns x1..x2 − 1. */
export type PixelBox = NormalizedBox;

/** Python 3's round(): to the nearest integer, halves to the even one. */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** The demo's pixel box of a normalised box: round-half-even of each edge times the side. */
export function demoPixelBox(box: NormalizedBox, size: PixelSize): PixelBox {
  return {
    x1: roundHalfEven(box.x1 * size.width),
    y1: roundHalfEven(box.y1 * size.height),
    x2: roundHalfEven(box.x2 * size.width),
    y2: roundHalfEven(box.y2 * size.height),
  };
}

/** The demo's uint8 image of a raw mask: trunc(clip(raw·0.5 + 0.5, 0, 1)·255), each step in float32. */
export function maskToUint8(raw: Float32Array): Uint8Array {
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const m = Math.min(1, Math.max(0, Math.fround(Math.fround(raw[i] * 0.5) + 0.5)));
    out[i] = Math.trunc(Math.fround(m * 255));
  }
  return out;
}

/**
 * The raw 64×64 mask resized into its pixel box: uint8[y2 − y1, x2 − x1] (the demo's soft mask), or null when
 * the box is empty after rounding.
 */
export function resizeIntoBox(raw: Float32Array, box: PixelBox): Uint8Array | null {
  const w = box.x2 - box.x1;
  const h = box.y2 - box.y1;
  if (w <= 0 || h <= 0) return null;
  return resizeBicubicGray(maskToUint8(raw), VAE_MASK_SIZE, VAE_MASK_SIZE, w, h);
}

/**
 * The binary mask over the whole image: uint8[height, width] of 0/1, row-major, 1 where the resized mask
 * reaches {@link MASK_THRESHOLD_U8} inside the object's box (all 0 when the rounded box is empty).
 * @param raw the decoder's float32[64, 64] output
 * @param box the segment's `box_normalized` (loc / 1024)
 * @param size the original image's size
 */
export function placeMask(raw: Float32Array, box: NormalizedBox, size: PixelSize): Uint8Array {
  const image = new Uint8Array(size.width * size.height);
  const px = demoPixelBox(box, size);
  const soft = resizeIntoBox(raw, px);
  if (soft === null) return image;
  const w = px.x2 - px.x1;
  // Clipped to the image; with loc ≤ 1023 the rounded box never leaves it, but a caller's box might.
  for (let y = Math.max(0, px.y1); y < Math.min(size.height, px.y2); y++) {
    for (let x = Math.max(0, px.x1); x < Math.min(size.width, px.x2); x++) {
      image[y * size.width + x] = soft[(y - px.y1) * w + (x - px.x1)] >= MASK_THRESHOLD_U8 ? 1 : 0;
    }
  }
  return image;
}
