/**
 * A guard against JPEG CPU bombs, run before the JPEG is decoded. jpeg-js decodes every scan over the whole
 * image, and a progressive scan can be a few bytes long (one end-of-band run covering every block), so a file of
 * a few megabytes can hold tens of thousands of scans and keep an isolate busy for minutes. Encoders write
 * one scan per component (baseline) or about ten (libjpeg's default progressive script), so a cap of
 * {@link MAX_JPEG_SCANS} refuses only crafted files.
 *
 * Marker layout: ITU T.81 §B.1.1 (markers, fill bytes, stuffed 0xFF00 in entropy-coded data, RSTn).
 */
import { InputError } from "../errors.ts";

/** Most scans (SOS markers) accepted in one JPEG. */
export const MAX_JPEG_SCANS = 100;

/** Counts the scans of a JPEG by walking its segments, skipping each scan's entropy-coded data. */
export function countJpegScans(b: Uint8Array): number {
  let scans = 0;
  let o = 2; // after SOI
  while (o + 1 < b.length) {
    if (b[o] !== 0xff) {
      o++; // stray byte between segments: tolerated, as libjpeg does
      continue;
    }
    const marker = b[o + 1];
    if (marker === 0xff) {
      o++; // fill byte
      continue;
    }
    o += 2;
    if (marker === 0xd9) break; // EOI
    if (marker === 0x00 || marker === 0x01 || marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7)) continue;
    if (o + 1 >= b.length) break;
    o += (b[o] << 8) | b[o + 1]; // the segment, its length field included
    if (marker !== 0xda) continue;
    scans++;
    // Entropy-coded data runs to the next marker that is not a stuffed 0x00 or a restart marker.
    while (o + 1 < b.length && !(b[o] === 0xff && b[o + 1] !== 0x00 && !(b[o + 1] >= 0xd0 && b[o + 1] <= 0xd7))) o++;
  }
  return scans;
}

/** @throws InputError 413 (`param: "image"`) for a JPEG with more than {@link MAX_JPEG_SCANS} scans. */
export function assertJpegScanLimit(bytes: Uint8Array): void {
  const scans = countJpegScans(bytes);
  if (scans > MAX_JPEG_SCANS) {
    throw new InputError("payload_too_large", `the JPEG has ${scans} scans, more than the ${MAX_JPEG_SCANS} accepted`, "image");
  }
}
