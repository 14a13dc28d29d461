/**
 * GIF → 8-bit RGB: the first frame as Pillow's `Image.open(f).convert("RGB")` gives it (see {@link readGifFrame}
 * for the palette, transparency and size rules, {@link decodeLzwInto} for what is truncated or broken). Later
 * frames of an animation are not decoded.
 *
 * The npm GIF decoders looked at (omggif 1.0.10, gifuct-js 2.1.2, modern-gif 2.1.0) all fill a truncated or
 * broken LZW stream with index 0 without saying so, and omggif reads indices past a short colour table from
 * whatever bytes follow it, so none can refuse what Pillow refuses; this small decoder is ours, as the PNG one is.
 *
 * Memory: one index byte and three RGB bytes per pixel, plus a 20 KB LZW table.
 */
import { InputError } from "../../errors.ts";
import type { RgbImage } from "../types.ts";
import { readGifFrame } from "./blocks.ts";
import { decodeLzwInto } from "./lzw.ts";

export { readGifFrame, type GifFrame } from "./blocks.ts";

/**
 * Decodes a GIF's first frame.
 *
 * @param maxPixels the caller's pixel limit, checked again here because a first frame that reaches past the
 *   logical screen grows the image (the header check saw only the screen).
 * @throws InputError 413 when the grown image is over `maxPixels`; 400 for a malformed, truncated or broken file.
 */
export function decodeGif(bytes: Uint8Array, maxPixels: number): RgbImage {
  const frame = readGifFrame(bytes);
  const { width, height, palette } = frame;
  if (width * height > maxPixels) {
    throw new InputError(
      "payload_too_large",
      `image is ${width}×${height} = ${width * height} pixels (its first frame reaches past the ${bytes[6] | (bytes[7] << 8)}×${bytes[8] | (bytes[9] << 8)} screen), over the limit of ${maxPixels}`,
      "image",
    );
  }
  const indices = new Uint8Array(width * height).fill(frame.fill); // [height, width]
  decodeLzwInto(bytes, frame, indices);
  const rgb = new Uint8Array(width * height * 3); // [height, width, 3]
  for (let i = 0, j = 0; i < indices.length; i++, j += 3) {
    const p = 3 * indices[i];
    rgb[j] = palette[p];
    rgb[j + 1] = palette[p + 1];
    rgb[j + 2] = palette[p + 2];
  }
  return { width, height, data: rgb };
}
