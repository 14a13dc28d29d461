/**
 * Image input for the vision worker, runnable inside workerd (no Node APIs, no run-time WASM):
 * bytes → {@link sniffImage} (format and declared size) → {@link decodeImage} (PNG/JPEG/WebP/GIF → RGB)
 * → {@link resizeBicubic} (Pillow-exact) → {@link toPixelValues} (float32[1, 3, S, S]).
 */
export type { DecodeLimits, ImageFormat, ImageHeader, RgbImage } from "./types.ts";
export { sniffImage } from "./sniff.ts";
export { imageCodecs, provideImageCodecs, type ImageCodecModules } from "./codecs.ts";
export { DECODABLE_FORMATS, decodeImage } from "./decode.ts";
export { resizeBicubic } from "./resize.ts";
export { preprocessImage, toPixelValues } from "./preprocess.ts";
export type { PreprocessSettings } from "./preprocess.ts";
