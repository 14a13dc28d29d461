/**
 * The shapes the benchmark builds: PaliGemma-3B's real sizes (SigLIP So400m/14 at 224 px + Gemma 2B, from
 * google/paligemma-3b-pt-224 config.json; see shared/docs/paligemma.md) and a tiny shape for smoke tests.
 * Only a few layers of each part are generated; per-layer numbers are the stage time divided by its layers.
 */
import { freezeConfig, type ModelConfig } from "../shared/model/config.ts";

/** paligemma-3b: the real sizes; tiny: the same structure in kilobytes (smoke tests). */
export type ShapeName = "paligemma-3b" | "tiny";
export const SHAPE_NAMES: readonly ShapeName[] = ["paligemma-3b", "tiny"];

/** What one benchmark run builds and feeds. */
export interface BenchShape {
  readonly name: ShapeName;
  readonly config: ModelConfig;
  /** Vision encoder layers [from, to): starts after layer 0 and ends before the last, so no conv or projector. */
  readonly vision: { readonly from: number; readonly to: number };
  /** Decoder layers [from, to), run for one new token. */
  readonly decoder: { readonly from: number; readonly to: number };
  /** Tokens already in the KV cache when the timed token is decoded. */
  readonly pastTokens: number;
  /** Prompt rows of the prefill_layer stage (PaliGemma-3B-224: 256 image tokens + `<bos>` + a short prefix). */
  readonly prefillRows: number;
  /** Vocabulary rows of the one head slice that is timed (the whole head is extrapolated from it). */
  readonly headRows: number;
}

/** PaliGemma-3B (paligemma-3b-pt-224): 256 image tokens, Gemma 2B decoder, 257216-row tied head. */
const PALIGEMMA_3B: ModelConfig = freezeConfig({
  variant: "paligemma",
  vision: { imageSize: 224, patchSize: 14, hidden: 1152, layers: 27, heads: 16, intermediate: 4304, layerNormEps: 1e-6 },
  text: {
    family: "gemma",
    hidden: 2048,
    layers: 18,
    heads: 8,
    kvHeads: 1,
    headDim: 256,
    intermediate: 16384,
    vocab: 257216,
    rmsNormEps: 1e-6,
    ropeTheta: 10000,
    queryPreAttnScalar: 256,
    attnLogitSoftcap: null,
    finalLogitSoftcap: null,
    slidingWindow: null,
  },
  projectionDim: 2048,
  imageTokens: 256, // (224 / 14)²
  tokens: { bos: 2, eos: 1, pad: 0, image: 257152 },
});

/** A few-kilobyte model with the same structure, for the smoke test. */
const TINY: ModelConfig = freezeConfig({
  variant: "paligemma",
  vision: { imageSize: 56, patchSize: 14, hidden: 64, layers: 4, heads: 4, intermediate: 128, layerNormEps: 1e-6 },
  text: {
    family: "gemma",
    hidden: 64,
    layers: 3,
    heads: 4,
    kvHeads: 1,
    headDim: 16,
    intermediate: 128,
    vocab: 1000,
    rmsNormEps: 1e-6,
    ropeTheta: 10000,
    queryPreAttnScalar: 16,
    attnLogitSoftcap: null,
    finalLogitSoftcap: null,
    slidingWindow: null,
  },
  projectionDim: 64,
  imageTokens: 16, // (56 / 14)²
  tokens: { bos: 2, eos: 1, pad: 0, image: 999 },
});

/**
 * The benchmark shape `name`, with `visionLayers` / `decoderLayers` generated layers. A head slice of 32768
 * rows × 2048 is 256 MiB at fp32, well under the ~1.5 GiB one onnxruntime-web instance holds in practice.
 */
export function benchShape(name: ShapeName, visionLayers = 2, decoderLayers = 2): BenchShape {
  const config = name === "tiny" ? TINY : PALIGEMMA_3B;
  if (visionLayers < 1 || visionLayers > config.vision.layers - 2) {
    throw new Error(`--vision-layers must be 1..${config.vision.layers - 2} for ${name}`);
  }
  if (decoderLayers < 1 || decoderLayers > config.text.layers) throw new Error(`--decoder-layers must be 1..${config.text.layers} for ${name}`);
  return Object.freeze({
    name,
    config,
    vision: Object.freeze({ from: 1, to: 1 + visionLayers }),
    decoder: Object.freeze({ from: 0, to: decoderLayers }),
    pastTokens: 300,
    prefillRows: name === "tiny" ? 20 : 270,
    headRows: name === "tiny" ? 256 : 32768,
  });
}
