/**
 * The typed, frozen configuration of one PaliGemma variant.
 *
 * Raw `config.json` keys are read exactly once, by the converter (`converter/checkpoint/hf-config.ts`);
 * everything else in the project uses this shape, which is also stored in the manifest.
 */

/** SigLIP vision tower. */
export interface VisionConfig {
  readonly imageSize: number; // S: input images are S×S
  readonly patchSize: number; // conv kernel = stride
  readonly hidden: number; // Dv
  readonly layers: number;
  readonly heads: number;
  readonly intermediate: number; // MLP width
  readonly layerNormEps: number;
}

/** Gemma (family "gemma") or Gemma 2 (family "gemma2") decoder. */
export interface TextConfig {
  readonly family: "gemma" | "gemma2";
  readonly hidden: number; // H
  readonly layers: number;
  readonly heads: number; // query heads
  readonly kvHeads: number;
  readonly headDim: number;
  readonly intermediate: number;
  readonly vocab: number; // rows of the (padded) embedding table
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  /** Attention scores are multiplied by queryPreAttnScalar^-0.5 (Gemma 1: head_dim). */
  readonly queryPreAttnScalar: number;
  /** Gemma 2 attention-logit soft-cap; null when off. */
  readonly attnLogitSoftcap: number | null;
  /** Gemma 2 final-logit soft-cap; null when off (fine-tunes may set 0/null). */
  readonly finalLogitSoftcap: number | null;
  /** Gemma 2 sliding window on even layers; null when no layer slides. */
  readonly slidingWindow: number | null;
}

export interface SpecialTokens {
  readonly bos: number;
  readonly eos: number;
  readonly pad: number;
  readonly image: number; // image_token_index
}

export interface ModelConfig {
  readonly variant: "paligemma" | "paligemma2";
  readonly vision: VisionConfig;
  readonly text: TextConfig;
  readonly projectionDim: number; // projector output = text hidden
  readonly imageTokens: number; // (imageSize / patchSize)^2
  readonly tokens: SpecialTokens;
}

/** True for layers that use Gemma 2's sliding window (even layers 0, 2, …; transformers v4.47). */
export function isSlidingLayer(text: TextConfig, layer: number): boolean {
  return text.family === "gemma2" && text.slidingWindow !== null && layer % 2 === 0;
}

/** Deep-freezes a config so no caller can mutate the shared instance. */
export function freezeConfig(config: ModelConfig): ModelConfig {
  Object.freeze(config.vision);
  Object.freeze(config.text);
  Object.freeze(config.tokens);
  return Object.freeze(config);
}
