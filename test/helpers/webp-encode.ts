/** A lossless WebP encoder for tests (libwebp's, from @jsquash/webp's codec, compiled here in Node). */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import createEncoder from "@jsquash/webp/codec/enc/webp_enc.js";
import { defaultOptions } from "@jsquash/webp/meta.js";
import type { RgbImage } from "../../shared/image/types.ts";

const require = createRequire(import.meta.url);
let module: Promise<WebAssembly.Module> | undefined;

/** A lossless WebP (`exact`: colours under transparent pixels kept) of `image`, opaque unless `alpha` (uint8[H·W]) is given. */
export async function losslessWebp(image: RgbImage, alpha?: Uint8Array): Promise<Uint8Array> {
  module ??= WebAssembly.compile(readFileSync(require.resolve("@jsquash/webp/codec/enc/webp_enc.wasm")));
  const compiled = await module;
  const encoder = await createEncoder({
    noInitialRun: true,
    instantiateWasm: (imports: WebAssembly.Imports, done: (instance: WebAssembly.Instance) => void) => {
      const instance = new WebAssembly.Instance(compiled, imports);
      done(instance);
      return instance.exports;
    },
  } as never);
  const rgba = new Uint8Array(image.width * image.height * 4); // [H, W, 4]
  for (let i = 0; i < image.width * image.height; i++) {
    rgba.set(image.data.subarray(3 * i, 3 * i + 3), 4 * i);
    rgba[4 * i + 3] = alpha ? alpha[i] : 255;
  }
  const out = encoder.encode(rgba, image.width, image.height, { ...defaultOptions, lossless: 1, exact: 1 });
  if (!out) throw new Error("libwebp could not encode the test image");
  return new Uint8Array(out);
}
