/**
 * PNG → 8-bit RGB, with the result of Pillow's `Image.open(f).convert("RGB")` (16-bit greyscale aside: see
 * {@link PngRowDecoder}), bounded by construction: chunks are checked ({@link readPngChunks}), the image data
 * is inflated by zlib within the size the header implies ({@link inflateTo}), and rows are decoded as they
 * arrive. There is no separate bomb guard that could disagree with the decoder: the inflate that is capped is
 * the one that decodes.
 */
import type { RgbImage } from "../types.ts";
import { readPngChunks } from "./chunks.ts";
import { corruptPng } from "./errors.ts";
import { InflateError, inflateTo } from "./inflate.ts";
import { PngRowDecoder, pngDataBytes } from "./rows.ts";

export { crc32, readPngChunks, type PngHeader } from "./chunks.ts";
export { pngDataBytes } from "./rows.ts";

/**
 * Inflated bytes accepted past the image data the header implies (encoders do not pad, but a little room
 * costs nothing; a bomb is off by orders of magnitude).
 */
export const IMAGE_DATA_SLACK_BYTES = 64 * 1024;

/**
 * Largest inflated iCCP / zTXt / iTXt payload: Pillow's limit for these chunks (`ImageFile.SAFEBLOCK`, 1 MiB,
 * PngImagePlugin's `_safe_zlib_decompress`), over which Pillow refuses the file. Their content is not used.
 */
export const MAX_METADATA_BYTES = 1024 * 1024;

/** Inflates one compressed metadata chunk only to enforce {@link MAX_METADATA_BYTES}; zlib errors are ignored, as Pillow ignores them. */
async function checkMetadata(type: string, data: Uint8Array): Promise<void> {
  let total = 0;
  try {
    await inflateTo([data], (piece) => {
      total += piece.length;
      if (total > MAX_METADATA_BYTES) throw corruptPng(`its ${type} chunk inflates to more than ${MAX_METADATA_BYTES} bytes (a decompression bomb?)`);
    });
  } catch (err) {
    if (!(err instanceof InflateError)) throw err;
  }
}

/**
 * Decodes a PNG whose declared size the caller has already checked against its pixel limit.
 *
 * @throws InputError 400 for a malformed file: a bad chunk or CRC, a zlib error, image data that ends before
 *   the last row or inflates past the header's size (a decompression bomb), a metadata chunk over
 *   {@link MAX_METADATA_BYTES}, a bad filter type.
 */
export async function decodePng(bytes: Uint8Array): Promise<RgbImage> {
  const { header, palette, idat, metadata } = readPngChunks(bytes);
  for (const m of metadata) await checkMetadata(m.type, m.data);
  const rows = new PngRowDecoder(header, palette);
  const budget = pngDataBytes(header) + IMAGE_DATA_SLACK_BYTES;
  let total = 0;
  try {
    await inflateTo(idat, (piece) => {
      total += piece.length;
      if (total > budget) {
        throw corruptPng(`its image data inflates to more than the ${budget - IMAGE_DATA_SLACK_BYTES} bytes a ${header.width}×${header.height} image holds (a decompression bomb?)`);
      }
      rows.push(piece);
    });
  } catch (err) {
    if (err instanceof InflateError) throw corruptPng(`its image data is not a valid zlib stream (${err.message.slice(0, 100)})`);
    throw err;
  }
  if (!rows.complete) throw corruptPng("its image data ends before the last row (the file is truncated)");
  return rows.image();
}
