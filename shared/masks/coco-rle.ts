/**
 * COCO's run-length encoding of a binary mask, in the compressed string form pycocotools' `mask.encode`
 * returns (`{"size": [h, w], "counts": "..."}`; pycocotools/common/maskApi.c `rleEncode`, `rleToString`,
 * `rleFrString`). SAM, Detectron2 and most segmentation tools read it.
 *
 * Runs go over the pixels in **column-major** (Fortran) order, x outer, y inner, and alternate 0s and 1s
 * starting with a (possibly empty) run of 0s. Each count is written as 5-bit groups, least significant first,
 * each as a character 48 + group, with 0x20 set while more groups follow; from the fourth count on (index
 * i > 2) the count is stored as the difference to the count two before, so it may be negative, and the top
 * bit of a group (0x10) then carries the sign.
 */

/** A compressed COCO RLE: what pycocotools.mask.encode returns, with `counts` decoded to a string. */
export interface CocoRle {
  /** [height, width] of the whole image. */
  readonly size: readonly [number, number];
  readonly counts: string;
}

/** Run lengths of a row-major uint8[height, width] mask (nonzero = inside), column-major, 0s first. */
export function runLengths(mask: Uint8Array, width: number, height: number): number[] {
  if (mask.length !== width * height) throw new RangeError(`mask has ${mask.length} pixels, expected ${width}×${height}`);
  const counts: number[] = [];
  let value = 0;
  let run = 0;
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      const v = mask[y * width + x] !== 0 ? 1 : 0;
      if (v !== value) {
        counts.push(run);
        run = 0;
        value = v;
      }
      run++;
    }
  }
  counts.push(run);
  return counts;
}

/** pycocotools' `rleToString`: counts → the compressed string. */
export function countsToString(counts: readonly number[]): string {
  let s = "";
  for (let i = 0; i < counts.length; i++) {
    let x = counts[i] - (i > 2 ? counts[i - 2] : 0);
    for (let more = true; more; ) {
      let c = x & 0x1f;
      x >>= 5; // arithmetic shift: negative differences end at x = -1
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      s += String.fromCharCode(c + 48);
    }
  }
  return s;
}

/** pycocotools' `rleFrString`: the compressed string → counts. */
export function stringToCounts(s: string): number[] {
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    for (let more = true; more; ) {
      const c = s.charCodeAt(p) - 48;
      if (!(c >= 0 && c < 64)) throw new RangeError(`invalid COCO RLE character at ${p}: ${JSON.stringify(s[p])}`);
      x |= (c & 0x1f) << (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && c & 0x10) x |= -1 << (5 * k);
      if (more && p >= s.length) throw new RangeError("COCO RLE string ends inside a count");
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

/** Encodes a row-major uint8[height, width] mask (nonzero = inside) as a compressed COCO RLE. */
export function encodeCocoRle(mask: Uint8Array, width: number, height: number): CocoRle {
  return { size: [height, width], counts: countsToString(runLengths(mask, width, height)) };
}

/**
 * Decodes a compressed COCO RLE back to a row-major uint8[height, width] mask of 0/1.
 * @throws RangeError when the runs do not cover exactly height × width pixels
 */
export function decodeCocoRle(rle: CocoRle): Uint8Array {
  const [height, width] = rle.size;
  const mask = new Uint8Array(height * width);
  let at = 0; // column-major position
  let value = 0;
  for (const run of stringToCounts(rle.counts)) {
    if (run < 0 || at + run > mask.length) throw new RangeError(`COCO RLE runs exceed ${height}×${width} pixels`);
    if (value === 1) for (let i = at; i < at + run; i++) mask[(i % height) * width + Math.floor(i / height)] = 1;
    at += run;
    value ^= 1;
  }
  if (at !== mask.length) throw new RangeError(`COCO RLE runs cover ${at} pixels, the size says ${height}×${width}`);
  return mask;
}
