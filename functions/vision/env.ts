/** The vision worker's bindings and vars (functions/vision/wrangler.toml). */
import { MAX_IMAGE_BYTES } from "../../shared/api/image-input.ts";
import type { ModelEnv } from "../../shared/worker/model-store.ts";

/** Bindings and vars of the vision worker. */
export interface VisionEnv extends ModelEnv {
  /** "kernel" (default): the SigLIP tower as float32 GEMMs in the kernel module (kernels/); "ort": onnxruntime-web. */
  readonly ENCODE?: string;
  /** Soft tokens, shared with the decoder worker. */
  readonly SOFT_TOKENS: KVNamespace;
  /** Lifetime of a stored image's soft tokens, in seconds (KV's minimum is 60). */
  readonly SOFT_TOKEN_TTL_S?: string;
  /** Largest KV value written per chunk, in bytes (≤ 25 MiB). */
  readonly SOFT_TOKEN_CHUNK_BYTES?: string;
  /** Largest accepted image file, in bytes (keep equal to the decoder's). */
  readonly MAX_IMAGE_BYTES?: string;
  /** Largest accepted image, width × height, checked on the header before decoding. */
  readonly MAX_IMAGE_PIXELS?: string;
}

/**
 * Defaults for the vars above. The pixel limit keeps a decode inside a 128 MB isolate next to the model:
 * a JPEG costs up to ~17 bytes per pixel while it decodes (libjpeg's coefficients of a progressive 4:4:4 file,
 * its RGBA output, the copy out of WASM and the RGB image; the WASM instance is dropped after each decode) and
 * a WebP ~15–17 (libwebp's instance, its RGBA copy, the RGB image), a GIF 4 (indices and RGB) and a PNG ~3 (the RGB
 * image; rows are decoded as they inflate), so 2 MiP (1920×1080 fits) peaks near 36 MB.
 * PaliGemma sees 224–896 px squares, so larger photos lose nothing by being downscaled before upload.
 */
export const VISION_DEFAULTS = Object.freeze({
  softTokenTtlSeconds: 7 * 24 * 3600,
  maxImageBytes: MAX_IMAGE_BYTES,
  maxImagePixels: 2 * 1024 * 1024,
});
