/** Production wiring of the vision worker: the model from this isolate's cache, the KV store, the limits. */
// A relative path: wrangler's module collector resolves .wasm imports against the importing file, not node_modules.
import jpegDecoder from "../../node_modules/@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm";
import webpDecoder from "../../node_modules/@jsquash/webp/codec/dec/webp_dec.wasm";
import { provideImageCodecs } from "../../shared/image/codecs.ts";
import { intVar } from "../../shared/worker/env-vars.ts";
import { ModelCache } from "../../shared/worker/model-cache.ts";
import type { ServingModel } from "../../shared/worker/serving-model.ts";
import { SoftTokenStore } from "../../shared/worker/soft-token-store.ts";
import { backendVar, workersModel } from "../../shared/worker/workers-model.ts";
import { isPipelined, pipelineModel } from "../../shared/worker/pipeline-model.ts";
import type { EncodeDeps } from "./encode.ts";
import { VISION_DEFAULTS, type VisionEnv } from "./env.ts";

provideImageCodecs({ jpeg: jpegDecoder, webp: webpDecoder });

/** Read-only models of this isolate (weights and graphs; no request data). */
const models = new ModelCache<ServingModel>();

/** Encoding dependencies for one request's env. */
export function visionDeps(env: VisionEnv): EncodeDeps {
  return {
    // ENCODE = "ort" encodes with onnxruntime-web instead of the kernel module (the default).
    // With STAGE_VISION_* service bindings the vision tower runs in stage workers, this worker coordinating them.
    model: () => (isPipelined(env) ? pipelineModel(models, env, { tokenizer: false }) : workersModel(models, env, { tokenizer: false, backends: { vision: backendVar(env.ENCODE) } })),
    store: new SoftTokenStore(env.SOFT_TOKENS, {
      ttlSeconds: intVar(env.SOFT_TOKEN_TTL_S, VISION_DEFAULTS.softTokenTtlSeconds, "SOFT_TOKEN_TTL_S"),
      maxChunkBytes: env.SOFT_TOKEN_CHUNK_BYTES ? intVar(env.SOFT_TOKEN_CHUNK_BYTES, 0, "SOFT_TOKEN_CHUNK_BYTES") : undefined,
    }),
    maxBytes: intVar(env.MAX_IMAGE_BYTES, VISION_DEFAULTS.maxImageBytes, "MAX_IMAGE_BYTES"),
    maxPixels: intVar(env.MAX_IMAGE_PIXELS, VISION_DEFAULTS.maxImagePixels, "MAX_IMAGE_PIXELS"),
  };
}
