/**
 * Hugging Face tensor names by role (transformers' PaliGemmaForConditionalGeneration state dict), and the
 * synchronous source the graph builders read float32 weights from.
 */

/** float32 weights by HF name; the converter preloads what a stage needs. */
export interface TensorSource {
  get(name: string): Float32Array;
}

const VIS = "vision_tower.vision_model";
const LM = "language_model.model";
const wb = (p: string) => ({ weight: `${p}.weight`, bias: `${p}.bias` });

export const hf = {
  vision: {
    embeddings: {
      patchWeight: `${VIS}.embeddings.patch_embedding.weight`, // [Dv, 3, p, p]
      patchBias: `${VIS}.embeddings.patch_embedding.bias`, // [Dv]
      position: `${VIS}.embeddings.position_embedding.weight`, // [N, Dv]
    },
    layer: (i: number) => {
      const p = `${VIS}.encoder.layers.${i}`;
      return {
        ln1: wb(`${p}.layer_norm1`),
        ln2: wb(`${p}.layer_norm2`),
        q: wb(`${p}.self_attn.q_proj`),
        k: wb(`${p}.self_attn.k_proj`),
        v: wb(`${p}.self_attn.v_proj`),
        o: wb(`${p}.self_attn.out_proj`),
        fc1: wb(`${p}.mlp.fc1`),
        fc2: wb(`${p}.mlp.fc2`),
      };
    },
    post: wb(`${VIS}.post_layernorm`),
  },
  projector: wb("multi_modal_projector.linear"), // [P, Dv]
  text: {
    embed: `${LM}.embed_tokens.weight`, // [V, H], tied to the LM head
    lmHead: "language_model.lm_head.weight", // normally absent (tied)
    norm: `${LM}.norm.weight`,
    layer: (i: number) => {
      const p = `${LM}.layers.${i}`;
      return {
        inputNorm: `${p}.input_layernorm.weight`,
        postAttnNorm: `${p}.post_attention_layernorm.weight`,
        preFfNorm: `${p}.pre_feedforward_layernorm.weight`, // Gemma 2 only
        postFfNorm: `${p}.post_feedforward_layernorm.weight`, // Gemma 2 only
        q: `${p}.self_attn.q_proj.weight`, // [heads·hd, H]
        k: `${p}.self_attn.k_proj.weight`, // [kvHeads·hd, H]
        v: `${p}.self_attn.v_proj.weight`,
        o: `${p}.self_attn.o_proj.weight`, // [H, heads·hd]
        gate: `${p}.mlp.gate_proj.weight`, // [I, H]
        up: `${p}.mlp.up_proj.weight`,
        down: `${p}.mlp.down_proj.weight`, // [H, I]
      };
    },
  },
} as const;
