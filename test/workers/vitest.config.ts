/**
 * Durable Object tests inside workerd (vitest-pool-workers): `npx vitest run -c test/workers/vitest.config.ts`.
 * The test worker is test/workers/wrangler.toml; an eval image of the shapes model is passed in as a binding.
 */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { loraReference } from "./lora-reference.ts";
import { lruFixture } from "./lora-lru-fixture.ts";

const here = dirname(fileURLToPath(import.meta.url));
const shared = process.env.PALIGEMMA_SHARED_DIR ?? resolve(here, "../../../shared");
const image = (name: string) => readFileSync(join(shared, "models/paligemma-shapes/eval", name)).toString("base64");
/** The shapes golden (transformers' own outputs), for the parity test inside workerd. Missing files fail here. */
const golden = (name: string) => readFileSync(join(shared, "golden/paligemma-shapes", name)).toString("base64");
/** The VQ-VAE golden (random weights with the real key names, the reference masks), for the mask tests. */
const vqvae = (name: string) => readFileSync(join(shared, "golden-vqvae", name));
/** The golden LoRA adapter's merged model run in Node (lora-reference.ts), for the adapter test inside workerd. */
const lora = await loraReference(shared);
/** A model with two adapters for the adapter-budget test (lora-lru-fixture.ts), and the second one's reference. */
const lru = await lruFixture(resolve(here, "../.."), shared);

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: join(here, "wrangler.toml") },
      miniflare: {
        bindings: {
          EVAL_IMAGE_000: image("img_000_96x96.png"),
          EVAL_IMAGE_001: image("img_001_160x120.png"),
          GOLDEN_PIXEL_VALUES: golden("pixel_values.bin"),
          GOLDEN_INPUT_IDS: golden("input_ids.bin"),
          GOLDEN_PROJECTOR_OUTPUT: golden("projector_output.bin"),
          GOLDEN_LOGITS: golden("logits.bin"),
          GOLDEN_STEP_LOGITS: golden("greedy_step_logits.bin"),
          GOLDEN_GREEDY: readFileSync(join(shared, "golden/paligemma-shapes/greedy.json"), "utf8"),
          GOLDEN_JPEG_PROGRESSIVE: readFileSync(join(shared, "golden-jpeg/photo-progressive-q75.jpg")).toString("base64"),
          GOLDEN_JPEG_PROGRESSIVE_RGB: readFileSync(join(shared, "golden-jpeg/photo-progressive-q75.rgb.u8")).toString("base64"),
          GOLDEN_JPEG_444: readFileSync(join(shared, "golden-jpeg/sharp-444-q95.jpg")).toString("base64"),
          GOLDEN_JPEG_GRAY: readFileSync(join(shared, "golden-jpeg/gray-q85.jpg")).toString("base64"),
          // WebP and GIF files with Pillow's decodes (test/fixtures/images/make-webp-gif.py), as JSON text.
          PILLOW_WEBP_GIF: readFileSync(join(here, "../fixtures/images/pillow-webp-gif.json"), "utf8"),
          VQVAE_NPZ: vqvae("vae-random.npz").toString("base64"),
          VQVAE_MASKS: vqvae("masks.bin").toString("base64"),
          VQVAE_CODES: vqvae("codes.json").toString("utf8"),
          LORA_MERGED_LOGITS: lora.logits,
          LORA_MERGED_STEPS: lora.steps,
          LORA_MERGED_GREEDY: lora.greedy,
          LRU_FILES: lru.files,
          LRU_WIDE_LOGITS: lru.wide.logits,
          LRU_WIDE_STEPS: lru.wide.steps,
          LRU_WIDE_GREEDY: lru.wide.greedy,
        },
      },
    }),
  ],
  test: {
    root: here,
    include: ["**/*.test.ts"],
    // workerd also reports the break of a ReadableStream received over RPC (its Durable Object was aborted
    // mid-stream, as faults.test.ts does on purpose) as an unhandled rejection, even when every read and
    // `closed` is handled (checked with a bare reader). That message is ignored.
    // Likewise workerd's DecompressionStream reports a zlib error (a corrupt PNG, refused with its 400) a second
    // time as an unhandled rejection even when the reader, the writer and both `closed` promises handle it
    // (checked with a bare stream, and with pipeThrough): its three zlib messages are ignored too.
    onUnhandledError: (error) =>
      !/ReadableStream received over RPC disconnected prematurely|^Decompression failed\.$|^Trailing bytes after end of compressed data$|^Called close\(\) on a decompression stream with incomplete data$/.test(error.message ?? ""),
    testTimeout: 60_000,
  },
});
