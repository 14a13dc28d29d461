import { InputError } from "../errors.ts";
import { decodeJpegToRgb } from "./jpeg.ts";
import { decodePngToRgb } from "./png.ts";
import { FORMAT_NAMES, sniffImage } from "./sniff.ts";
import type { DecodeLimits, RgbImage } from "./types.ts";

/** A decoder error's message, with its cause's (fast-png wraps inflate errors). */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? ` ${err.cause.message}` : "";
  return `${err.message}${cause}`.trim();
}

/**
 * Decodes a PNG or JPEG file into 8-bit RGB (HWC), as Pillow's `Image.open(f).convert("RGB")` would
 * (alpha dropped, greyscale and palette expanded; see `decodePngToRgb` and `decodeJpegToRgb`).
 *
 * The header is read first and the declared size checked against `limits.maxPixels` before any
 * decoder runs. Every failure caused by the input is an {@link InputError} with `param: "image"`:
 * - `unsupported_media_type` (415): empty input, unknown signature, WebP / GIF / BMP (recognised
 *   but not decodable: workerd cannot compile WASM decoders at run time), sub-byte interlaced PNG;
 * - `payload_too_large` (413): declared width·height over `limits.maxPixels`;
 * - `invalid_request` (400): truncated or corrupt header or data ("could not decode the PNG image: …").
 *
 * @throws RangeError only for invalid `limits` (a programming error, not bad input).
 */
export function decodeImage(bytes: Uint8Array, limits: DecodeLimits): RgbImage {
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
  let image: RgbImage;
  try {
    image = header.format === "png" ? decodePngToRgb(bytes) : decodeJpegToRgb(bytes, limits.maxPixels);
  } catch (err) {
    if (err instanceof InputError) throw err;
    const reason = describe(err);
    throw new InputError("invalid_request", `could not decode the ${name} image: ${reason}`, "image");
  }
  if (image.width !== width || image.height !== height || image.data.length !== pixels * 3) {
    throw new InputError(
      "invalid_request",
      `could not decode the ${name} image: header says ${width}×${height}, data decoded as ${image.width}×${image.height}`,
      "image",
    );
  }
  return image;
}
