import { decode as decodeJpegPixels } from "jpeg-js";
import type { RgbImage } from "./types.ts";

/**
 * jpeg-js's own memory accounting, in bytes per declared pixel: 4 bytes per DCT coefficient per
 * component (Int32 blocks), plus the upsampled component lines and the colour-converted output.
 * That is ≈ 21 B/px for 3-component 4:4:4 and ≈ 27 B/px for 4-component (CMYK); 32 leaves room for
 * block padding. The JS heap use is higher still (one Int32Array object per 8×8 block), so keep
 * `maxPixels` modest in a 128 MB isolate.
 */
const JPEG_ACCOUNTED_BYTES_PER_PIXEL = 32;

/**
 * Decodes a baseline or progressive JPEG with jpeg-js into RGB (greyscale is replicated to R, G, B;
 * YCbCr and Adobe CMYK/YCCK are colour-converted by jpeg-js). EXIF orientation is not applied,
 * matching Pillow's `Image.open(f).convert("RGB")`. Pixel values can differ from libjpeg's (used by
 * Pillow) by a few levels: the IDCT and chroma upsampling are not the same.
 *
 * @param maxPixels passed to jpeg-js as `maxResolutionInMP`, and sizes its `maxMemoryUsageInMB`, so
 *   that a file whose scan differs from the checked header still cannot allocate without bound.
 * @throws Error from jpeg-js on corrupt or unsupported data (the caller wraps it in an InputError).
 */
export function decodeJpegToRgb(bytes: Uint8Array, maxPixels: number): RgbImage {
  const decoded = decodeJpegPixels(bytes, {
    useTArray: true, // Uint8Array output: workerd has no Buffer
    formatAsRGBA: false, // packed RGB, 3 bytes per pixel
    tolerantDecoding: true,
    maxResolutionInMP: maxPixels / 1e6,
    maxMemoryUsageInMB: Math.ceil((maxPixels * JPEG_ACCOUNTED_BYTES_PER_PIXEL) / 2 ** 20) + 4,
  });
  const { width, height } = decoded;
  const data = decoded.data;
  if (data.length !== width * height * 3) {
    throw new Error(`decoder returned ${data.length} bytes for a ${width}×${height} image`);
  }
  return { width, height, data };
}
