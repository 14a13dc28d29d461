/**
 * Hugging Face tensor names of a PaliGemma checkpoint (transformers v4.47 `PaliGemmaForConditionalGeneration`
 * state dict, as in the released checkpoints), by role, and the shape each must have for a given config.
 * Graph builders take names from `hfNames` instead of spelling strings.
 */
import type { ModelConfig } from "../../shared/model/config.ts";

/** A layer with a weight and a bias. */
export interface WeightBias {
  readonly weight: string;
  readonly bias: string;
}

/** One SigLIP encoder layer. Linear weights are `[out, in]`. */
export interface VisionLayerNames {
  readonly layerNorm1: WeightBias; // [Dv]
  readonly qProj: WeightBias; // [Dv, Dv]
  readonly kProj: WeightBias; // [Dv, Dv]
  readonly vProj: WeightBias; // [Dv, Dv]
  readonly outProj: WeightBias; // [Dv, Dv]
  readonly layerNorm2: WeightBias; // [Dv]
  readonly fc1: WeightBias; // [Iv, Dv]
  readonly fc2: WeightBias; // [Dv, Iv]
}

/** One Gemma / Gemma 2 decoder layer: weights only (no biases). */
export interface TextLayerNames {
  readonly inputLayernorm: string; // [H]
  readonly qProj: string; // [heads·headDim, H]
  readonly kProj: string; // [kvHeads·headDim, H]
  readonly vProj: string; // [kvHeads·headDim, H]
  readonly oProj: string; // [H, heads·headDim]
  readonly postAttentionLayernorm: string; // [H]
  readonly preFeedforwardLayernorm: string; // [H], Gemma 2 only
  readonly postFeedforwardLayernorm: string; // [H], Gemma 2 only
  readonly gateProj: string; // [I, H]
  readonly upProj: string; // [I, H]
  readonly downProj: string; // [H, I]
}

const VISION = "vision_tower.vision_model";
const TEXT = "language_model.model";
const wb = (prefix: string): WeightBias => ({ weight: `${prefix}.weight`, bias: `${prefix}.bias` });

/** Every tensor name of the checkpoint, by role. */
export const hfNames = Object.freeze({
  /** Conv2d patch embedding: weight `[Dv, 3, p, p]`, bias `[Dv]`. */
  patchEmbedding: wb(`${VISION}.embeddings.patch_embedding`),
  /** Learned position embedding `[imageTokens, Dv]`, row-major patch order. */
  positionEmbedding: `${VISION}.embeddings.position_embedding.weight`,
  /** SigLIP encoder layer `i`. */
  visionLayer(i: number): VisionLayerNames {
    const p = `${VISION}.encoder.layers.${i}`;
    return {
      layerNorm1: wb(`${p}.layer_norm1`),
      qProj: wb(`${p}.self_attn.q_proj`),
      kProj: wb(`${p}.self_attn.k_proj`),
      vProj: wb(`${p}.self_attn.v_proj`),
      outProj: wb(`${p}.self_attn.out_proj`),
      layerNorm2: wb(`${p}.layer_norm2`),
      fc1: wb(`${p}.mlp.fc1`),
      fc2: wb(`${p}.mlp.fc2`),
    };
  },
  /** Final SigLIP LayerNorm `[Dv]`. */
  postLayernorm: wb(`${VISION}.post_layernorm`),
  /** Prefix of SigLIP's unused attention-pooling head (present only when vision_use_head is true). */
  visionHeadPrefix: `${VISION}.head.`,
  /** Projector Linear: weight `[P, Dv]`, bias `[P]`. */
  projector: wb("multi_modal_projector.linear"),
  /** Token embedding `[V, H]`, also the (tied) LM head. */
  embedTokens: `${TEXT}.embed_tokens.weight`,
  /** Decoder layer `i`. */
  textLayer(i: number): TextLayerNames {
    const p = `${TEXT}.layers.${i}`;
    return {
      inputLayernorm: `${p}.input_layernorm.weight`,
      qProj: `${p}.self_attn.q_proj.weight`,
      kProj: `${p}.self_attn.k_proj.weight`,
      vProj: `${p}.self_attn.v_proj.weight`,
      oProj: `${p}.self_attn.o_proj.weight`,
      postAttentionLayernorm: `${p}.post_attention_layernorm.weight`,
      preFeedforwardLayernorm: `${p}.pre_feedforward_layernorm.weight`,
      postFeedforwardLayernorm: `${p}.post_feedforward_layernorm.weight`,
      gateProj: `${p}.mlp.gate_proj.weight`,
      upProj: `${p}.mlp.up_proj.weight`,
      downProj: `${p}.mlp.down_proj.weight`,
    };
  },
  /** Final RMSNorm `[H]`. */
  finalNorm: `${TEXT}.norm.weight`,
  /** Optional explicit LM head `[V, H]`; normally absent because it is tied to embedTokens. */
  lmHead: "language_model.lm_head.weight",
});

/** Every required tensor and its shape for `config` (the optional lm_head and pooling head are not listed). */
export function expectedTensorShapes(config: ModelConfig): Map<string, readonly number[]> {
  const { vision: v, text: t } = config;
  const out = new Map<string, readonly number[]>();
  const add = (name: string, shape: number[]) => out.set(name, shape);
  const addWB = (names: WeightBias, weight: number[]) => {
    add(names.weight, weight);
    add(names.bias, [weight[0]]);
  };
  const dv = v.hidden;
  addWB(hfNames.patchEmbedding, [dv, 3, v.patchSize, v.patchSize]);
  add(hfNames.positionEmbedding, [config.imageTokens, dv]);
  for (let i = 0; i < v.layers; i++) {
    const l = hfNames.visionLayer(i);
    addWB(l.layerNorm1, [dv]);
    for (const proj of [l.qProj, l.kProj, l.vProj, l.outProj]) addWB(proj, [dv, dv]);
    addWB(l.layerNorm2, [dv]);
    addWB(l.fc1, [v.intermediate, dv]);
    addWB(l.fc2, [dv, v.intermediate]);
  }
  addWB(hfNames.postLayernorm, [dv]);
  addWB(hfNames.projector, [config.projectionDim, dv]);
  const h = t.hidden;
  add(hfNames.embedTokens, [t.vocab, h]);
  for (let i = 0; i < t.layers; i++) {
    const l = hfNames.textLayer(i);
    add(l.inputLayernorm, [h]);
    add(l.qProj, [t.heads * t.headDim, h]);
    add(l.kProj, [t.kvHeads * t.headDim, h]);
    add(l.vProj, [t.kvHeads * t.headDim, h]);
    add(l.oProj, [h, t.heads * t.headDim]);
    add(l.postAttentionLayernorm, [h]);
    if (t.family === "gemma2") {
      add(l.preFeedforwardLayernorm, [h]);
      add(l.postFeedforwardLayernorm, [h]);
    }
    add(l.gateProj, [t.intermediate, h]);
    add(l.upProj, [t.intermediate, h]);
    add(l.downProj, [h, t.intermediate]);
  }
  add(hfNames.finalNorm, [h]);
  return out;
}
