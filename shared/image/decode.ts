import { InputError } from "../errors.ts";
import { imageCodecs } from "./codecs.ts";
import { decodeJpegWithinBudget } from "./jpeg/index.ts";
import { decodePng } from "./png/index.ts";
import { FORMAT_NAMES, sniffImage } from "./sniff.ts";
import type { DecodeLimits, RgbImage } from "./types.ts";

/**
 * Decodes a PNG or JPEG file into 8-bit RGB (HWC), as Pillow's `Image.open(f).convert("RGB")` would
 * (alpha dropped, greyscale and palette expanded; see `png/` and `jpeg/`).
 *
 * The header is read first and the declared size checked against `limits.maxPixels` before any decoder
 * runs; each decoder then bounds its own work by that size (PNG: inflated bytes; JPEG: scans and block
 * visits). Every failure caused by the input is an {@link InputError} with `param: "image"`:
 * - `unsupported_media_type` (415): empty input, unknown signature, WebP / GIF / BMP, a JPEG process libjpeg
 *   does not decode;
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
  if (header.format !== "png" && header.format !== "jpeg") {
    throw new InputError("unsupported_media_type", `${name} images are not supported yet; send PNG or JPEG`, "image");
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
  const image = header.format === "png" ? await decodePng(bytes) : await decodeJpegWithinBudget(bytes, imageCodecs().jpeg);
  if (image.width !== width || image.height !== height || image.data.length !== pixels * 3) {
    throw new InputError(
      "invalid_request",
      `could not decode the ${name} image: header says ${width}×${height}, data decoded as ${image.width}×${image.height}`,
      "image",
    );
  }
  return image;
}
