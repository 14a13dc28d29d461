/**
 * Hugging Face `config.json` → ModelConfig. The only module that reads raw config keys.
 *
 * Absent fields take the defaults of transformers v4.47.0: PaliGemmaConfig, SiglipVisionConfig, GemmaConfig and
 * Gemma2Config `__init__` arguments (models/{paligemma,siglip,gemma,gemma2}/configuration_*.py).
 */
import { ModelFormatError } from "../../shared/errors.ts";
import { freezeConfig, type ModelConfig, type TextConfig, type VisionConfig } from "../../shared/model/config.ts";
import { JsonFields } from "./json-fields.ts";

/** What config.json says beyond ModelConfig that the checkpoint loader needs. */
export interface HfConfigDetails {
  readonly config: ModelConfig;
  /** SigLIP attention-pooling head weights may be present (`vision_use_head`); PaliGemma never uses them. */
  readonly visionUseHead: boolean;
}

/** GELU variants that are the tanh approximation in transformers' ACT2FN (PyTorchGELUTanh, NewGELU, FastGELU). */
const TANH_GELUS = new Set(["gelu_pytorch_tanh", "gelu_new", "gelu_fast"]);

// PaliGemmaConfig(vision_config=None): SigLIP So400m/14 as transformers builds it. Its intermediate_size is 4096,
// although the released checkpoints (which always carry a vision_config) use 4304; we keep transformers' value.
const PALIGEMMA_VISION: VisionConfig = {
  imageSize: 224, patchSize: 14, hidden: 1152, layers: 27, heads: 16, intermediate: 4096, layerNormEps: 1e-6,
};
// SiglipVisionConfig's own defaults, used field by field when vision_config is present.
const SIGLIP_VISION: VisionConfig = {
  imageSize: 224, patchSize: 16, hidden: 768, layers: 12, heads: 12, intermediate: 3072, layerNormEps: 1e-6,
};

type TextShape = Pick<TextConfig, "vocab" | "hidden" | "intermediate" | "layers" | "heads" | "kvHeads" | "headDim">;
const GEMMA: TextShape = { vocab: 256000, hidden: 3072, intermediate: 24576, layers: 28, heads: 16, kvHeads: 16, headDim: 256 };
const GEMMA2: TextShape = { vocab: 256000, hidden: 2304, intermediate: 9216, layers: 26, heads: 8, kvHeads: 4, headDim: 256 };

/** Parses a PaliGemma / PaliGemma 2 config.json; throws ModelFormatError naming the offending field. */
export function parseHfConfig(raw: unknown): ModelConfig {
  return parseHfConfigDetails(raw).config;
}

/** As parseHfConfig, plus the checkpoint-layout details ModelConfig does not carry. */
export function parseHfConfigDetails(raw: unknown): HfConfigDetails {
  const top = JsonFields.of(raw, "config.json");
  const modelType = top.optionalString("model_type", null);
  if (modelType !== "paligemma") {
    throw new ModelFormatError(`unsupported model_type ${JSON.stringify(modelType)} (expected "paligemma")`);
  }
  const { vision, useHead } = parseVision(top.child("vision_config"));
  const text = parseText(top);
  const projectionDim = top.posInt("projection_dim", 2048);
  if (projectionDim !== text.hidden) {
    throw new ModelFormatError(`projection_dim ${projectionDim} must equal text_config.hidden_size ${text.hidden}`);
  }
  if (vision.imageSize % vision.patchSize !== 0) {
    throw new ModelFormatError(
      `vision_config.image_size ${vision.imageSize} is not a multiple of vision_config.patch_size ${vision.patchSize}`,
    );
  }
  const side = vision.imageSize / vision.patchSize;
  const config: ModelConfig = {
    variant: text.family === "gemma" ? "paligemma" : "paligemma2",
    vision,
    text,
    projectionDim,
    imageTokens: side * side,
    tokens: parseTokens(top, text.vocab),
  };
  return { config: freezeConfig(config), visionUseHead: useHead };
}

function parseVision(v: JsonFields | null): { vision: VisionConfig; useHead: boolean } {
  if (v === null) return { vision: { ...PALIGEMMA_VISION }, useHead: false };
  const modelType = v.string("model_type", "siglip_vision_model");
  if (modelType !== "siglip_vision_model") {
    throw new ModelFormatError(`unsupported ${v.path("model_type")} ${JSON.stringify(modelType)}`);
  }
  if (v.posInt("num_channels", 3) !== 3) throw v.bad("num_channels", "3 (RGB)");
  checkTanhGelu(v, "hidden_act", v.string("hidden_act", "gelu_pytorch_tanh"));
  const d = SIGLIP_VISION;
  const vision: VisionConfig = {
    imageSize: v.posInt("image_size", d.imageSize),
    patchSize: v.posInt("patch_size", d.patchSize),
    hidden: v.posInt("hidden_size", d.hidden),
    layers: v.posInt("num_hidden_layers", d.layers),
    heads: v.posInt("num_attention_heads", d.heads),
    intermediate: v.posInt("intermediate_size", d.intermediate),
    layerNormEps: v.posNumber("layer_norm_eps", d.layerNormEps),
  };
  if (vision.hidden % vision.heads !== 0) {
    throw new ModelFormatError(
      `${v.path("hidden_size")} ${vision.hidden} is not divisible by ${v.path("num_attention_heads")} ${vision.heads}`,
    );
  }
  // SiglipVisionConfig defaults vision_use_head to true; PaliGemma checkpoints set it false.
  return { vision, useHead: v.bool("vision_use_head", true) };
}

function parseText(top: JsonFields): TextConfig {
  const t = top.child("text_config");
  if (t === null) {
    // PaliGemmaConfig(text_config=None): Gemma 2B with the top-level vocab_size.
    const shape: TextShape = {
      vocab: top.posInt("vocab_size", 257152), hidden: 2048, intermediate: 16384, layers: 18, heads: 8, kvHeads: 1,
      headDim: 256,
    };
    return { family: "gemma", ...shape, rmsNormEps: 1e-6, ropeTheta: 10000, queryPreAttnScalar: shape.headDim,
      attnLogitSoftcap: null, finalLogitSoftcap: null, slidingWindow: null };
  }
  const modelType = t.string("model_type", "gemma");
  if (modelType !== "gemma" && modelType !== "gemma2") {
    throw new ModelFormatError(`unsupported ${t.path("model_type")} ${JSON.stringify(modelType)} (expected gemma or gemma2)`);
  }
  const gemma2 = modelType === "gemma2";
  const d = gemma2 ? GEMMA2 : GEMMA;
  const shape: TextShape = {
    vocab: t.posInt("vocab_size", d.vocab),
    hidden: t.posInt("hidden_size", d.hidden),
    intermediate: t.posInt("intermediate_size", d.intermediate),
    layers: t.posInt("num_hidden_layers", d.layers),
    heads: t.posInt("num_attention_heads", d.heads),
    kvHeads: t.posInt("num_key_value_heads", d.kvHeads),
    headDim: t.posInt("head_dim", d.headDim),
  };
  if (shape.heads % shape.kvHeads !== 0) {
    throw new ModelFormatError(
      `${t.path("num_key_value_heads")} ${shape.kvHeads} does not divide ${t.path("num_attention_heads")} ${shape.heads}`,
    );
  }
  // GemmaMLP ignores hidden_act and uses hidden_activation, falling back to gelu_pytorch_tanh when it is null.
  checkTanhGelu(t, "hidden_activation", t.optionalString("hidden_activation", null) ?? "gelu_pytorch_tanh");
  if (t.bool("attention_bias", false)) throw t.bad("attention_bias", "false (Gemma attention has no biases)");
  if (!t.bool("tie_word_embeddings", true)) throw t.bad("tie_word_embeddings", "true (the LM head is the embedding)");
  const common = {
    ...shape,
    rmsNormEps: t.posNumber("rms_norm_eps", 1e-6),
    ropeTheta: t.posNumber("rope_theta", 10000),
  };
  if (!gemma2) {
    return { family: "gemma", ...common, queryPreAttnScalar: shape.headDim, attnLogitSoftcap: null,
      finalLogitSoftcap: null, slidingWindow: null };
  }
  return {
    family: "gemma2",
    ...common,
    queryPreAttnScalar: t.posNumber("query_pre_attn_scalar", 256),
    attnLogitSoftcap: t.optionalCap("attn_logit_softcapping", 50.0),
    finalLogitSoftcap: t.optionalCap("final_logit_softcapping", 30.0),
    slidingWindow: t.optionalPosInt("sliding_window", 4096),
  };
}

/** bos/eos/pad from the top level (then text_config, then Gemma's 2/1/0); image = image_token_index. */
function parseTokens(top: JsonFields, vocab: number): ModelConfig["tokens"] {
  const text = top.child("text_config");
  const inVocab = (where: JsonFields, key: string, value: number): number => {
    if (value >= vocab) {
      throw new ModelFormatError(`${where.path(key)} ${value} is outside the text vocabulary (vocab_size ${vocab})`);
    }
    return value;
  };
  const id = (key: string, fallback: number): number => {
    const set = (f: JsonFields | null): f is JsonFields => f !== null && f.has(key) && f.raw(key) !== null;
    const where = set(top) ? top : set(text) ? text : null;
    if (where === null) return inVocab(top, key, fallback); // absent or null everywhere
    const v = where.raw(key);
    if (!Array.isArray(v)) return inVocab(where, key, where.index(key, fallback));
    // eos_token_id may be a list of stop ids; its first entry is the canonical eos.
    const first: unknown = v[0];
    if (typeof first !== "number" || !Number.isSafeInteger(first) || first < 0) {
      throw where.bad(key, "a token id or a non-empty list of token ids");
    }
    return inVocab(where, key, first);
  };
  // transformers >= 4.48 also spells it image_token_id.
  const imageKey = !top.has("image_token_index") && top.has("image_token_id") ? "image_token_id" : "image_token_index";
  return {
    bos: id("bos_token_id", 2),
    eos: id("eos_token_id", 1),
    pad: id("pad_token_id", 0),
    image: inVocab(top, imageKey, top.index(imageKey, 256000)),
  };
}

function checkTanhGelu(f: JsonFields, key: string, value: string): void {
  if (!TANH_GELUS.has(value)) {
    throw new ModelFormatError(
      `unsupported ${f.path(key)} ${JSON.stringify(value)} (expected a tanh-approximated GELU: ${[...TANH_GELUS].join(", ")})`,
    );
  }
}
