/** parseHfConfig: transformers v4.47 defaults, soft-cap handling and named validation errors. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseHfConfig, parseHfConfigDetails } from "../../converter/checkpoint/hf-config.ts";
import { ModelFormatError } from "../../shared/errors.ts";

const SHARED = process.env.PALIGEMMA_SHARED_DIR ?? fileURLToPath(new URL("../../../shared/", import.meta.url));
const readConfig = (folder: string): Record<string, any> => JSON.parse(readFileSync(join(SHARED, folder, "config.json"), "utf8"));

/** A small valid PaliGemma 2 config; tests override parts of it. */
function pg2(text: Record<string, unknown> = {}, top: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model_type: "paligemma",
    image_token_index: 399,
    projection_dim: 64,
    vision_config: { hidden_size: 32, image_size: 56, patch_size: 14, num_attention_heads: 4, intermediate_size: 48 },
    text_config: {
      model_type: "gemma2", vocab_size: 400, hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2,
      intermediate_size: 96, num_hidden_layers: 2, head_dim: 24, ...text,
    },
    ...top,
  };
}

function expectFormatError(fn: () => unknown, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ModelFormatError);
  expect((caught as Error).message).toMatch(message);
}

describe("parseHfConfig defaults (transformers v4.47)", () => {
  it("a bare paligemma config is PaliGemmaConfig(): So400m/14 at 224 (intermediate 4096) + Gemma 2B", () => {
    const c = parseHfConfig({ model_type: "paligemma" });
    expect(c.variant).toBe("paligemma");
    expect(c.vision).toEqual({
      imageSize: 224, patchSize: 14, hidden: 1152, layers: 27, heads: 16, intermediate: 4096, layerNormEps: 1e-6,
    });
    expect(c.text).toEqual({
      family: "gemma", vocab: 257152, hidden: 2048, intermediate: 16384, layers: 18, heads: 8, kvHeads: 1,
      headDim: 256, rmsNormEps: 1e-6, ropeTheta: 10000, queryPreAttnScalar: 256, attnLogitSoftcap: null,
      finalLogitSoftcap: null, slidingWindow: null,
    });
    expect(c.projectionDim).toBe(2048);
    expect(c.imageTokens).toBe(256);
    expect(c.tokens).toEqual({ bos: 2, eos: 1, pad: 0, image: 256000 });
  });

  it("text_config absent takes the top-level vocab_size", () => {
    expect(parseHfConfig({ model_type: "paligemma", vocab_size: 257216 }).text.vocab).toBe(257216);
  });

  it("an empty vision_config takes SiglipVisionConfig's own defaults", () => {
    const c = parseHfConfig({ model_type: "paligemma", vision_config: {} });
    expect(c.vision).toEqual({
      imageSize: 224, patchSize: 16, hidden: 768, layers: 12, heads: 12, intermediate: 3072, layerNormEps: 1e-6,
    });
    expect(c.imageTokens).toBe(196);
  });

  it("a text_config without model_type is Gemma with GemmaConfig defaults", () => {
    const c = parseHfConfig({ model_type: "paligemma", projection_dim: 3072, image_token_index: 255999, text_config: {} });
    expect(c.text).toEqual({
      family: "gemma", vocab: 256000, hidden: 3072, intermediate: 24576, layers: 28, heads: 16, kvHeads: 16,
      headDim: 256, rmsNormEps: 1e-6, ropeTheta: 10000, queryPreAttnScalar: 256, attnLogitSoftcap: null,
      finalLogitSoftcap: null, slidingWindow: null,
    });
  });

  it("a gemma2 text_config takes Gemma2Config defaults", () => {
    const c = parseHfConfig({
      model_type: "paligemma", projection_dim: 2304, image_token_index: 255999, text_config: { model_type: "gemma2" },
    });
    expect(c.variant).toBe("paligemma2");
    expect(c.text).toEqual({
      family: "gemma2", vocab: 256000, hidden: 2304, intermediate: 9216, layers: 26, heads: 8, kvHeads: 4,
      headDim: 256, rmsNormEps: 1e-6, ropeTheta: 10000, queryPreAttnScalar: 256, attnLogitSoftcap: 50,
      finalLogitSoftcap: 30, slidingWindow: 4096,
    });
  });

  it("Gemma 1 ignores Gemma 2 keys: queryPreAttnScalar = head_dim, no caps, no window", () => {
    const c = parseHfConfig(pg2({ model_type: "gemma", query_pre_attn_scalar: 99, final_logit_softcapping: 30, sliding_window: 8 }));
    expect(c.text).toMatchObject({ family: "gemma", queryPreAttnScalar: 24, attnLogitSoftcap: null, finalLogitSoftcap: null, slidingWindow: null });
  });

  it("hidden_activation null falls back to gelu_pytorch_tanh", () => {
    expect(parseHfConfig(pg2({ hidden_activation: null })).text.family).toBe("gemma2");
    expect(parseHfConfig(pg2({ model_type: "gemma", hidden_activation: null })).text.family).toBe("gemma");
  });

  it("returns a deeply frozen config", () => {
    const c = parseHfConfig(pg2());
    expect(Object.isFrozen(c) && Object.isFrozen(c.text) && Object.isFrozen(c.vision) && Object.isFrozen(c.tokens)).toBe(true);
  });

  it("eos_token_id given as a list uses its first id", () => {
    expect(parseHfConfig(pg2({}, { eos_token_id: [1, 107] })).tokens.eos).toBe(1);
  });
});

describe("soft-caps and sliding window", () => {
  it.each([null, 0])("final_logit_softcapping %s means no soft-cap", (cap) => {
    expect(parseHfConfig(pg2({ final_logit_softcapping: cap })).text.finalLogitSoftcap).toBeNull();
  });
  it.each([null, 0])("attn_logit_softcapping %s means no soft-cap", (cap) => {
    expect(parseHfConfig(pg2({ attn_logit_softcapping: cap })).text.attnLogitSoftcap).toBeNull();
  });
  it("sliding_window null means no sliding layer", () => {
    expect(parseHfConfig(pg2({ sliding_window: null })).text.slidingWindow).toBeNull();
  });
  it("keeps given values", () => {
    const t = parseHfConfig(pg2({ final_logit_softcapping: 3.0, attn_logit_softcapping: 8.0, sliding_window: 8, query_pre_attn_scalar: 32 })).text;
    expect([t.finalLogitSoftcap, t.attnLogitSoftcap, t.slidingWindow, t.queryPreAttnScalar]).toEqual([3, 8, 8, 32]);
  });
});

describe("parseHfConfig errors name the field", () => {
  const cases: [string, unknown, RegExp][] = [
    ["not an object", [], /config\.json must be a JSON object/],
    ["wrong model_type", { ...pg2(), model_type: "llava" }, /unsupported model_type "llava"/],
    ["no model_type", { ...pg2(), model_type: undefined }, /unsupported model_type null/],
    ["llama text", pg2({ model_type: "llama" }), /unsupported text_config\.model_type "llama"/],
    ["clip vision", pg2({}, { vision_config: { model_type: "clip_vision_model" } }), /unsupported vision_config\.model_type "clip_vision_model"/],
    ["negative heads", pg2({ num_attention_heads: -4 }), /text_config\.num_attention_heads must be a positive integer, got -4/],
    ["fractional layers", pg2({ num_hidden_layers: 2.5 }), /text_config\.num_hidden_layers must be a positive integer/],
    ["string head_dim", pg2({ head_dim: "24" }), /text_config\.head_dim must be a positive integer, got "24"/],
    ["null hidden", pg2({ hidden_size: null }), /text_config\.hidden_size must be a positive integer, got null/],
    ["kv not dividing heads", pg2({ num_key_value_heads: 3 }), /text_config\.num_key_value_heads 3 does not divide text_config\.num_attention_heads 4/],
    ["zero eps", pg2({ rms_norm_eps: 0 }), /text_config\.rms_norm_eps must be a finite number > 0/],
    ["negative cap", pg2({ final_logit_softcapping: -1 }), /text_config\.final_logit_softcapping/],
    ["zero window", pg2({ sliding_window: 0 }), /text_config\.sliding_window must be a positive integer or null/],
    ["exact gelu", pg2({ hidden_activation: "gelu" }), /unsupported text_config\.hidden_activation "gelu"/],
    ["relu vision", pg2({}, { vision_config: { hidden_act: "relu" } }), /unsupported vision_config\.hidden_act "relu"/],
    ["attention bias", pg2({ attention_bias: true }), /text_config\.attention_bias must be false/],
    ["untied head", pg2({ tie_word_embeddings: false }), /text_config\.tie_word_embeddings must be true/],
    ["image not divisible", pg2({}, { vision_config: { image_size: 50, patch_size: 14 } }), /vision_config\.image_size 50 is not a multiple of vision_config\.patch_size 14/],
    ["vision heads", pg2({}, { vision_config: { hidden_size: 30, num_attention_heads: 4, image_size: 56, patch_size: 14 } }), /vision_config\.hidden_size 30 is not divisible by vision_config\.num_attention_heads 4/],
    ["grey images", pg2({}, { vision_config: { num_channels: 1 } }), /vision_config\.num_channels must be 3/],
    ["projection dim", pg2({}, { projection_dim: 32 }), /projection_dim 32 must equal text_config\.hidden_size 64/],
    ["image token outside vocab", pg2({}, { image_token_index: 400 }), /image_token_index 400 is outside the text vocabulary \(vocab_size 400\)/],
    ["negative bos", pg2({}, { bos_token_id: -1 }), /bos_token_id must be a non-negative integer/],
    ["empty eos list", pg2({}, { eos_token_id: [] }), /eos_token_id must be a token id or a non-empty list/],
    ["text_config not object", pg2({}, { text_config: "gemma" }), /text_config must be a JSON object/],
  ];
  it.each(cases)("%s", (_name, raw, message) => {
    expectFormatError(() => parseHfConfig(raw), message);
  });
});

describe("parseHfConfig on the example checkpoints' config.json", () => {
  it("paligemma2-tiny", () => {
    const c = parseHfConfig(readConfig("golden/paligemma2-tiny"));
    expect(c.text).toMatchObject({ family: "gemma2", headDim: 24, queryPreAttnScalar: 32, slidingWindow: 8, attnLogitSoftcap: 8, finalLogitSoftcap: 3 });
  });
  it("paligemma-shapes: no pooling head, tokens from the config", () => {
    const d = parseHfConfigDetails(readConfig("models/paligemma-shapes"));
    expect(d.visionUseHead).toBe(false);
    expect(d.config.tokens).toEqual({ bos: 2, eos: 1, pad: 0, image: 1587 });
  });
  it("vision_use_head defaults to true (SiglipVisionConfig) when vision_config omits it", () => {
    expect(parseHfConfigDetails(pg2()).visionUseHead).toBe(true);
  });
});
