/** Real PaliGemma shapes for planning tests (no weights): PaliGemma 3B at 224 px. */
import type { ModelConfig } from "../../shared/model/config.ts";

/**
 * PaliGemma 3B, 224 px: SigLIP So400m (27 layers, D 1152, I 4304, 16 heads, 256 tokens of 14-px patches), Gemma 2B
 * (18 layers, H 2048, 8 heads, 1 KV head × 256, I 16384, vocab 257216), projection 2048 (google/paligemma-3b-pt-224
 * config.json).
 */
export const PG1_3B: ModelConfig = {
  variant: "paligemma",
  vision: { imageSize: 224, patchSize: 14, hidden: 1152, layers: 27, heads: 16, intermediate: 4304, layerNormEps: 1e-6 },
  text: {
    family: "gemma", hidden: 2048, layers: 18, heads: 8, kvHeads: 1, headDim: 256, intermediate: 16384, vocab: 257216,
    rmsNormEps: 1e-6, ropeTheta: 10000, queryPreAttnScalar: 256, attnLogitSoftcap: null, finalLogitSoftcap: null, slidingWindow: null,
  },
  projectionDim: 2048,
  imageTokens: 256,
  tokens: { bos: 2, eos: 1, pad: 0, image: 257152 },
};
