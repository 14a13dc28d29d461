/**
 * JPEG decoding within budgets: the markers are read first ({@link readJpegWork}, as libjpeg reads them) and
 * the decoder's work is bounded in proportion to the image's own size before libjpeg runs ({@link decodeJpeg}).
 */
import { InputError } from "../../errors.ts";
import type { RgbImage } from "../types.ts";
import { decodeJpeg } from "./decode.ts";
import { readJpegWork } from "./markers.ts";

export { readJpegWork, type JpegWork } from "./markers.ts";

/**
 * Most scans accepted in one JPEG. Encoders write one scan per component (baseline) or about ten (libjpeg's
 * and mozjpeg's progressive scripts); a progressive scan can be a few bytes that still cost a pass over every
 * block, so tens of thousands of scans in a small file would keep an isolate busy for minutes.
 */
export const MAX_JPEG_SCANS = 100;

/**
 * Most block visits per block of the frame, summed over the scans: ≈ 1 for baseline, 4–6 for libjpeg's
 * progressive script (the luma AC bands are split in several scans). The decode's CPU time is proportional
 * to the visits, so this makes it proportional to the image's pixels.
 */
export const MAX_SCAN_VISITS_PER_BLOCK = 32;

/**
 * Decodes a JPEG into RGB after checking its work against {@link MAX_JPEG_SCANS} and
 * {@link MAX_SCAN_VISITS_PER_BLOCK}.
 *
 * @throws InputError 413 over a budget, 415 for an unsupported JPEG process, 400 for a malformed file.
 */
export async function decodeJpegWithinBudget(bytes: Uint8Array, module: WebAssembly.Module): Promise<RgbImage> {
  const work = readJpegWork(bytes);
  if (work.scans > MAX_JPEG_SCANS) {
    throw new InputError("payload_too_large", `the JPEG has ${work.scans} scans, more than the ${MAX_JPEG_SCANS} accepted`, "image");
  }
  if (work.scanBlocks > MAX_SCAN_VISITS_PER_BLOCK * work.frameBlocks) {
    throw new InputError(
      "payload_too_large",
      `the JPEG's scans visit ${work.scanBlocks} blocks, more than ${MAX_SCAN_VISITS_PER_BLOCK} × the image's ${work.frameBlocks}`,
      "image",
    );
  }
  return decodeJpeg(bytes, module);
}
