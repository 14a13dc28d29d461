/// <reference types="@cloudflare/vitest-pool-workers/types" />
import type { DecoderEnv } from "../../functions/decoder/env.ts";
import type { FakeSessionObject, QuickTimeoutSessionObject, SegmentSessionObject, SlowSessionObject } from "./entry.ts";

declare global {
  namespace Cloudflare {
    interface Env extends DecoderEnv {
      readonly FAKE_SESSIONS: DurableObjectNamespace<FakeSessionObject>;
      readonly SLOW_SESSIONS: DurableObjectNamespace<SlowSessionObject>;
      readonly QUICK_SESSIONS: DurableObjectNamespace<QuickTimeoutSessionObject>;
      readonly SEGMENT_SESSIONS: DurableObjectNamespace<SegmentSessionObject>;
      /** A KV namespace no session reads (inline-soft-tokens.test.ts). */
      readonly VISION_ONLY_KV: KVNamespace;
      /** base64 PNGs of the shapes model's eval set. */
      readonly EVAL_IMAGE_000: string;
      readonly EVAL_IMAGE_001: string;
      /** base64 raw little-endian files of ../shared/golden/paligemma-shapes, and its greedy.json text. */
      readonly GOLDEN_PIXEL_VALUES: string;
      readonly GOLDEN_INPUT_IDS: string;
      readonly GOLDEN_PROJECTOR_OUTPUT: string;
      readonly GOLDEN_LOGITS: string;
      readonly GOLDEN_STEP_LOGITS: string;
      readonly GOLDEN_GREEDY: string;
      /** base64 files of ../shared/golden-jpeg (JPEGs and Pillow's RGB decode). */
      readonly GOLDEN_JPEG_PROGRESSIVE: string;
      readonly GOLDEN_JPEG_PROGRESSIVE_RGB: string;
      readonly GOLDEN_JPEG_444: string;
      readonly GOLDEN_JPEG_GRAY: string;
      /** test/fixtures/images/pillow-webp-gif.json: WebP and GIF files and Pillow's RGB decode of frame 0. */
      readonly PILLOW_WEBP_GIF: string;
      /** ../shared/golden-vqvae: vae-random.npz and masks.bin as base64, codes.json as text. */
      readonly VQVAE_NPZ: string;
      readonly VQVAE_MASKS: string;
      readonly VQVAE_CODES: string;
      /** The merged model of ../shared/golden-lora/shapes-lora-a on the golden input (lora-reference.ts): base64 f32 logits [L, vocab] and [8, vocab], greedy ids as JSON. */
      readonly LORA_MERGED_LOGITS: string;
      readonly LORA_MERGED_STEPS: string;
      readonly LORA_MERGED_GREEDY: string;
      /** lora-lru-fixture.ts: JSON {path: base64} of the two-adapter model's manifest and adapter files, and adapter `wide`'s merged reference (as above). */
      readonly LRU_FILES: string;
      readonly LRU_WIDE_LOGITS: string;
      readonly LRU_WIDE_STEPS: string;
      readonly LRU_WIDE_GREEDY: string;
    }
  }
}
