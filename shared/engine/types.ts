/**
 * What the runtime offers to the rest of the project (CLI, workers, benchmarks).
 * Shapes are given as `float32[rows, cols]`, batch 1 throughout.
 */
import type { ModelConfig } from "../model/config.ts";

/**
 * Image soft tokens: the projector's output, `float32[imageTokens, textHidden]`.
 * They enter the decoder unscaled (transformers divides by sqrt(H) and Gemma multiplies by it again);
 * `scaling: "projector_output"` records that convention wherever they are stored.
 */
export interface SoftTokens {
  readonly data: Float32Array; // [tokens, dim]
  readonly tokens: number;
  readonly dim: number;
}

/** Reads model files by their manifest-relative name. Node: local folder; Workers: assets / R2 / KV. */
export interface ModelStore {
  /** The file's bytes, or null when the store does not have it. */
  get(name: string): Promise<Uint8Array | null>;
}

/** The KV cache of one sequence: per decoder layer, keys and values `float32[kvHeads, length, headDim]`. */
export interface DecoderState {
  readonly length: number; // tokens in the cache (positions 1..length, 1-based as in transformers)
  readonly keys: readonly Float32Array[];
  readonly values: readonly Float32Array[];
}

export interface PrefillResult {
  readonly state: DecoderState;
  /** Logits of the last position, `float32[vocab]` (or of every position when `allLogits` was asked). */
  readonly logits: Float32Array;
}

export interface StepResult {
  readonly state: DecoderState;
  readonly logits: Float32Array; // [vocab]
}

/** Typed operations over one converted model. */
export interface PaliGemmaEngine {
  readonly config: ModelConfig;
  /** pixel values `float32[1, 3, S, S]` → soft tokens. */
  encodeImage(pixels: Float32Array): Promise<SoftTokens>;
  /**
   * Prefix-LM prefill: image soft tokens + token ids (the whole prompt, image-token ids included, as in
   * transformers' input_ids) attend to each other bidirectionally.
   */
  prefill(soft: SoftTokens, ids: readonly number[], opts?: { allLogits?: boolean }): Promise<PrefillResult>;
  /** One generated token against everything before it. */
  step(state: DecoderState, id: number): Promise<StepResult>;
}
