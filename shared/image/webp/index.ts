/**
 * WebP → 8-bit RGB with libwebp (the build in @jsquash/webp, compiled to WASM), which is what Pillow decodes
 * with: lossy and lossless, with or without alpha, give Pillow's `Image.open(f).convert("RGB")` byte for byte
 * (alpha dropped without compositing, as for PNG; test/unit/image-webp-gif.test.ts), and a lossless WebP gives
 * exactly the pixels of the image it was made from. An animation gives its first frame ({@link readWebpFrame}).
 *
 * Each decode runs in a fresh instance of the module, so no image's memory outlives its decode (the JPEG path
 * does the same). Cost, measured at 1920×1080: the instance's memory is 16.8 MB (lossy) to 20.2 MB (lossless)
 * after the decode (its RGBA output included), then the RGBA copy out of it (4 bytes per pixel), the RGB image
 * (3) and, for an animation's first frame, the canvas (3): ≈ 31–35 MB, within the JPEG path's ~17 bytes per pixel.
 */
import createDecoder from "@jsquash/webp/codec/dec/webp_dec.js";
import type { RgbImage } from "../types.ts";
import { corruptWebp, readWebpFrame } from "./container.ts";

export { corruptWebp, readWebpFrame, type WebpFrame } from "./container.ts";

/** libwebp on one still WebP file: RGBA pixels, or null when it refuses the data. */
async function libwebp(still: Uint8Array, module: WebAssembly.Module): Promise<ImageData | null> {
  const decoder = await createDecoder({
    noInitialRun: true,
    instantiateWasm: (imports: WebAssembly.Imports, done: (instance: WebAssembly.Instance) => void) => {
      const instance = new WebAssembly.Instance(module, imports);
      done(instance);
      return instance.exports;
    },
    print: () => {},
    printErr: () => {},
  } as never);
  try {
    return decoder.decode(still);
  } catch {
    return null; // an abort inside the instance (the instance is dropped with it)
  }
}

/**
 * Decodes a WebP whose declared canvas (`width`×`height`, from the header) fits the caller's pixel limit.
 *
 * @throws InputError 400 when the file is truncated or corrupt, or decodes to another size than it declares.
 */
export async function decodeWebp(bytes: Uint8Array, width: number, height: number, module: WebAssembly.Module): Promise<RgbImage> {
  const frame = readWebpFrame(bytes, width, height);
  const decoded = await libwebp(frame.still, module);
  if (!decoded) throw corruptWebp("libwebp could not decode it (corrupt or truncated data)");
  if (decoded.width !== frame.width || decoded.height !== frame.height) {
    throw corruptWebp(`its frame declares ${frame.width}×${frame.height} but its bitstream is ${decoded.width}×${decoded.height}`);
  }
  const rgb = new Uint8Array(width * height * 3); // [height, width, 3]; black where an animation's first frame leaves the canvas empty
  const src = decoded.data;
  for (let y = 0; y < frame.height; y++) {
    let i = y * frame.width * 4;
    let j = ((frame.y + y) * width + frame.x) * 3;
    for (let x = 0; x < frame.width; x++, i += 4, j += 3) {
      rgb[j] = src[i];
      rgb[j + 1] = src[i + 1];
      rgb[j + 2] = src[i + 2];
    }
  }
  return { width, height, data: rgb };
}
