import { InputError } from "../errors.ts";
import { imageCodecs } from "./codecs.ts";
import { decodeGif } from "./gif/index.ts";
import { decodeJpegWithinBudget } from "./jpeg/index.ts";
import { decodePng } from "./png/index.ts";
import { FORMAT_NAMES, sniffImage } from "./sniff.ts";
import type { DecodeLimits, ImageFormat, RgbImage } from "./types.ts";
import { decodeWebp } from "./webp/index.ts";

/** Formats {@link decodeImage} decodes (BMP is recognised, then refused with 415). */
export const DECODABLE_FORMATS: readonly ImageFormat[] = Object.freeze(["png", "jpeg", "webp", "gif"]);

/**
 * Decodes a PNG, JPEG, WebP or GIF file into 8-bit RGB (HWC), as Pillow's `Image.open(f).convert("RGB")` would
 * (alpha dropped, greyscale and palettes expanded; an animated WebP or GIF gives its first frame; see `png/`,
 * `jpeg/`, `webp/`, `gif/`).
 *
 * The header is read first and the declared size checked against `limits.maxPixels` before any decoder
 * runs; each decoder then bounds its own work by that size (PNG: inflated bytes; JPEG: scans and block
 * visits; WebP: libwebp decodes the declared canvas; GIF: the first frame's pixels, and a first frame that
 * grows the image past its screen is checked again). Every failure caused by the input is an
 * {@link InputError} with `param: "image"`:
 * - `unsupported_media_type` (415): empty input, unknown signature, BMP, a JPEG process libjpeg does not decode;
 * - `payload_too_large` (413): declared width·height over `limits.maxPixels`, a JPEG over its work budgets;
 * - `invalid_request` (400): truncated or corrupt header or data ("could not decode the PNG image: …").
 *
 * @throws RangeError only for invalid `limits` (a programming error, not bad input).
 */
export async function decodeImage(bytes: Uint8Array, limits: DecodeLimits): Promise<RgbImage> {
  if (!(limits.maxPixels > 0) || !Number.isFinite(limits.maxPixels)) {
    throw new RangeError(`maxPixels must be a positive finite number, got ${limits.maxPixels}`);
  }
  const header = sniffImage(bytes);
  const name = FORMAT_NAMES[header.format];
  if (!DECODABLE_FORMATS.includes(header.format)) {
    throw new InputError("unsupported_media_type", `${name} images are not supported; send PNG, JPEG, WebP or GIF`, "image");
  }
  const { width, height } = header;
  const pixels = width * height;
  if (pixels > limits.maxPixels) {
    throw new InputError(
      "payload_too_large",
      `image is ${width}×${height} = ${pixels} pixels, over the limit of ${limits.maxPixels}`,
      "image",
    );
  }
  let image: RgbImage;
  if (header.format === "png") image = await decodePng(bytes);
  else if (header.format === "jpeg") image = await decodeJpegWithinBudget(bytes, imageCodecs().jpeg);
  else if (header.format === "webp") image = await decodeWebp(bytes, width, height, imageCodecs().webp);
  else return decodeGif(bytes, limits.maxPixels); // its size may grow past the header's (see gif/blocks.ts)
  if (image.width !== width || image.height !== height || image.data.length !== pixels * 3) {
    throw new InputError(
      "invalid_request",
      `could not decode the ${name} image: header says ${width}×${height}, data decoded as ${image.width}×${image.height}`,
      "image",
    );
  }
  return image;
}
