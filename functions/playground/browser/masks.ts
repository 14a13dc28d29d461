/**
 * Segment masks on the page: COCO compressed RLE (the API's `mask.counts`, over the whole image) decoded as
 * pycocotools' rleFrString does, and painted into the mask canvas, which has the image's natural size.
 */
import type { SegmentMask } from "../../../shared/tasks/loc-answer.ts";

/** Alpha of a painted mask pixel (0.45). */
const MASK_ALPHA = 115;

/**
 * COCO compressed RLE → run lengths: 5-bit groups, 0x20 = more, 0x10 = sign; from the fourth count on, the
 * value is a difference to the count two before.
 */
export function rleCounts(s: string): number[] {
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      const c = s.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && c & 0x10) x |= -1 << (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

/**
 * Paints `rle` (runs of 0s then 1s, column-major over [height, width]) in colour `rgb` into `canvas`; returns
 * its pixel count (0 when its size is not the canvas's).
 */
export function paintMask(canvas: HTMLCanvasElement, rle: SegmentMask, rgb: readonly [number, number, number]): number {
  const [h, w] = rle.size;
  if (h !== canvas.height || w !== canvas.width) return 0;
  const ctx = canvas.getContext("2d")!;
  const pixels = ctx.getImageData(0, 0, w, h);
  const counts = rleCounts(rle.counts);
  let at = 0;
  let painted = 0;
  for (let i = 0; i < counts.length; i++) {
    if (i % 2 === 1) {
      for (let j = at; j < at + counts[i] && j < w * h; j++) {
        const y = j % h;
        const o = (y * w + (j - y) / h) * 4;
        pixels.data[o] = rgb[0];
        pixels.data[o + 1] = rgb[1];
        pixels.data[o + 2] = rgb[2];
        pixels.data[o + 3] = MASK_ALPHA;
        painted++;
      }
    }
    at += counts[i];
  }
  ctx.putImageData(pixels, 0, 0);
  return painted;
}
