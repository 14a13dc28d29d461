/** Image container formats that {@link sniffImage} recognises (all but BMP can be decoded). */
export type ImageFormat = "png" | "jpeg" | "webp" | "gif" | "bmp";

/** What a file's header declares, read before any pixel data is decoded. */
export interface ImageHeader {
  readonly format: ImageFormat;
  /** Declared width in pixels (≥ 1). */
  readonly width: number;
  /** Declared height in pixels (≥ 1). */
  readonly height: number;
}

/**
 * An 8-bit RGB image: `data` is uint8[height, width, 3] (HWC, row-major, no padding),
 * so `data.length === width * height * 3`.
 */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array; // [height, width, 3]
}

/** Resource limits applied before decoding (the caller picks them to fit the isolate's memory). */
export interface DecodeLimits {
  /** Largest accepted width·height, checked against the header before any decoding. */
  readonly maxPixels: number;
}
