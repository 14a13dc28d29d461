import { decodeImage } from "./decode.ts";
import { resizeBicubic } from "./resize.ts";
import type { DecodeLimits, RgbImage } from "./types.ts";

/**
 * SiglipImageProcessor settings as PaliGemmaProcessor uses them. The released checkpoints'
 * preprocessor_config.json has rescale_factor 1/255 and image_mean = image_std = [0.5, 0.5, 0.5]
 * (docs/model-notes.md, "Image preprocessing"); only `size` differs per model (224/448/896).
 */
export interface PreprocessSettings {
  /** Output height and width S (the vision tower's image_size). */
  readonly size: number;
  /** rescale_factor, applied in float64 and then rounded to float32. */
  readonly rescale: number;
  /** image_mean per channel (R, G, B). */
  readonly mean: readonly [number, number, number];
  /** image_std per channel (R, G, B). */
  readonly std: readonly [number, number, number];
}

/**
 * Converts an RGB image to the vision tower's input `float32[1, 3, S, S]` (NCHW), as transformers
 * does: bicubic resize to S×S (Pillow-exact, aspect ratio not kept) unless already S×S, then per
 * value `f32(x · rescale)` (product in float64, like numpy's `astype(float64) * scale`), then
 * `f32(f32(x - f32(mean)) / f32(std))` (numpy float32 arithmetic), channels first.
 *
 * @throws RangeError if `s.size` is not a positive integer.
 */
export function toPixelValues(img: RgbImage, s: PreprocessSettings): Float32Array<ArrayBuffer> {
  const size = s.size;
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`size must be a positive integer, got ${size}`);
  const resized = img.width === size && img.height === size ? img : resizeBicubic(img, size, size);
  const plane = size * size;
  const out = new Float32Array(3 * plane); // [1, 3, S, S]
  const lut = new Float32Array(256);
  for (let c = 0; c < 3; c++) {
    // Each uint8 level maps to one float32: build the table once per channel.
    const mean = Math.fround(s.mean[c]);
    const std = Math.fround(s.std[c]);
    for (let v = 0; v < 256; v++) {
      const scaled = Math.fround(v * s.rescale);
      lut[v] = Math.fround(Math.fround(scaled - mean) / std);
    }
    const src = resized.data;
    const base = c * plane;
    for (let i = 0, p = c; i < plane; i++, p += 3) out[base + i] = lut[src[p]];
  }
  return out;
}

/**
 * Full preprocessing of an uploaded image file: {@link decodeImage} (PNG/JPEG/WebP/GIF → RGB, with the pixel
 * limit checked on the header) → Pillow-exact bicubic resize to S×S → {@link toPixelValues}.
 *
 * @returns float32[1, 3, S, S], channels first, values in [-1, 1] for the PaliGemma settings.
 * @throws InputError for any problem with the file (see {@link decodeImage}).
 */
export async function preprocessImage(bytes: Uint8Array, s: PreprocessSettings, limits: DecodeLimits): Promise<Float32Array<ArrayBuffer>> {
  return toPixelValues(await decodeImage(bytes, limits), s);
}
