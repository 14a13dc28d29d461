/**
 * JPEG → 8-bit RGB with libjpeg-turbo's own decoder (the mozjpeg build in @jsquash/jpeg, compiled to WASM),
 * which is what Pillow decodes with: the accurate integer IDCT (`JDCT_ISLOW`) and smooth ("fancy") chroma
 * upsampling are libjpeg's defaults, so the pixels equal Pillow's `Image.open(f).convert("RGB")` byte for byte
 * (tested against Pillow's decodes in test/unit/image-jpeg-golden.test.ts: 4:2:0, 4:4:4, progressive,
 * greyscale). EXIF orientation is not applied (transformers does not apply it either).
 *
 * Each decode runs in a fresh instance of the module: libjpeg stops on a fatal error by calling `exit()`,
 * which leaves an Emscripten instance unusable and its allocations unreleased, so instances are never reused.
 */
import createDecoder from "@jsquash/jpeg/codec/dec/mozjpeg_dec.js";
import type { RgbImage } from "../types.ts";
import { corruptJpeg } from "./markers.ts";

/** libjpeg's warning for data that ends before the image does (Pillow refuses such files: "image file is truncated"). */
const TRUNCATED = /Premature end of JPEG file/;

/** Longest libjpeg message quoted in an error. */
const MAX_MESSAGE = 120;

/**
 * Decodes a JPEG whose markers were checked ({@link readJpegWork}) and whose size fits the caller's limits.
 *
 * @throws InputError 400 when libjpeg stops on an error or the data is cut short.
 */
export async function decodeJpeg(bytes: Uint8Array, module: WebAssembly.Module): Promise<RgbImage> {
  const messages: string[] = [];
  const decoder = await createDecoder({
    noInitialRun: true,
    instantiateWasm: (imports: WebAssembly.Imports, done: (instance: WebAssembly.Instance) => void) => {
      const instance = new WebAssembly.Instance(module, imports);
      done(instance);
      return instance.exports;
    },
    print: (m: string) => messages.push(m),
    printErr: (m: string) => messages.push(m),
  } as never);
  let decoded: ImageData | null;
  try {
    decoded = decoder.decode(bytes, false);
  } catch {
    decoded = null;
  }
  const last = messages.at(-1)?.slice(0, MAX_MESSAGE);
  if (!decoded) throw corruptJpeg(last ? `libjpeg: ${last}` : "libjpeg could not decode it");
  if (messages.some((m) => TRUNCATED.test(m))) throw corruptJpeg("its data ends before the image does (the file is truncated)");
  const { width, height, data } = decoded;
  const rgb = new Uint8Array(width * height * 3); // [height, width, 3]
  for (let i = 0, j = 0; j < rgb.length; i += 4, j += 3) {
    rgb[j] = data[i];
    rgb[j + 1] = data[i + 1];
    rgb[j + 2] = data[i + 2];
  }
  return { width, height, data: rgb };
}
