/** The vision worker's bindings and vars (functions/vision/wrangler.toml). */
import type { ModelEnv } from "../../shared/worker/model-store.ts";

/** Bindings and vars of the vision worker. */
export interface VisionEnv extends ModelEnv {
  /** Soft tokens, shared with the decoder worker. */
  readonly SOFT_TOKENS: KVNamespace;
  /** Lifetime of a stored image's soft tokens, in seconds (KV's minimum is 60). */
  readonly SOFT_TOKEN_TTL_S?: string;
  /** Largest KV value written per chunk, in bytes (≤ 25 MiB). */
  readonly SOFT_TOKEN_CHUNK_BYTES?: string;
  /** Largest accepted image, width × height. */
  readonly MAX_IMAGE_PIXELS?: string;
}

/** Defaults for the vars above. */
export const VISION_DEFAULTS = Object.freeze({
  softTokenTtlSeconds: 7 * 24 * 3600,
  maxImagePixels: 16_000_000,
});
