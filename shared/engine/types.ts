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
  /** The file as a stream of chunks (weight files are streamed into kernel memory), or null when absent. */
  stream?(name: string): Promise<ReadableStream<Uint8Array> | null>;
}

/** The KV cache of one sequence: per decoder layer, keys and values `float32[kvHeads, length, headDim]`. */
export interface DecoderState {
  readonly length: number; // tokens in the cache (positions 1..length, 1-based as in transformers)
  readonly keys: readonly Float32Array[];
  readonly values: readonly Float32Array[];
  /**
   * Frees the memory of the cache this state owns (a prefill's state owns it; the states steps return share
   * it). The owner of the prefill's state calls this when it is done with it; absent for plain arrays.
   */
  release?(): void;
  /** Bytes of cache memory this state owns (kernel states; absent for plain arrays). */
  readonly bytes?: number;
  /** The LoRA adapter the cache was computed with (kernel states; null or absent: the base model). */
  readonly adapter?: string | null;
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

/** Where an engine's memory goes, in bytes (kernel parts are 0 for onnxruntime phases). */
export interface EngineMemory {
  /** Which backend runs each phase. */
  readonly backends: EngineBackends;
  /** Weights held by the kernel module (in their stored format). */
  readonly kernelWeightBytes: number;
  /** The kernel instance's linear memory (never shrinks), 0 without one. */
  readonly kernelMemoryBytes: number;
  /** Whether an onnxruntime instance exists in this engine. */
  readonly onnxruntime: boolean;
  /** Bytes of LoRA factors held in kernel memory (one base, each adapter its factors only). */
  readonly adapterBytes?: number;
  /** The adapters held, least recently used first, with their factor bytes. */
  readonly adapters?: readonly { readonly name: string; readonly bytes: number }[];
}

/** Who runs each phase: the kernel module or onnxruntime-web. */
export interface EngineBackends {
  readonly vision: "kernel" | "ort";
  readonly prefill: "kernel" | "ort";
  readonly decode: "kernel" | "ort";
}

/** Typed operations over one converted model. */
export interface PaliGemmaEngine {
  readonly config: ModelConfig;
  /** pixel values `float32[1, 3, S, S]` → soft tokens. */
  encodeImage(pixels: Float32Array, opts?: { adapter?: string | null }): Promise<SoftTokens>;
  /**
   * Prefix-LM prefill: image soft tokens + token ids (the whole prompt, image-token ids included, as in
   * transformers' input_ids) attend to each other bidirectionally. `adapter`: a LoRA adapter's name.
   */
  prefill(soft: SoftTokens, ids: readonly number[], opts?: { allLogits?: boolean; adapter?: string | null }): Promise<PrefillResult>;
  /** One generated token against everything before it (with the adapter its state was prefilled with). */
  step(state: DecoderState, id: number): Promise<StepResult>;
  /** Where its memory goes (absent for test fakes). */
  memory?(): EngineMemory;
}
