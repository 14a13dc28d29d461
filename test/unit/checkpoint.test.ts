/**
 * Checkpoint.open on the example checkpoints: configs, tensor lists, exact weights.
 * The example folders must exist: a missing one fails these tests.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { Checkpoint } from "../../converter/checkpoint/checkpoint.ts";
import { hfNames } from "../../converter/checkpoint/names.ts";
import { readRaw } from "../helpers/safetensors-raw.ts";

const SHARED = process.env.PALIGEMMA_SHARED_DIR ?? fileURLToPath(new URL("../../../shared/", import.meta.url));
const PG1 = join(SHARED, "golden/paligemma1-tiny");
const PG2 = join(SHARED, "golden/paligemma2-tiny");
const SHAPES = join(SHARED, "models/paligemma-shapes");
const SHAPES_GOLDEN = join(SHARED, "golden/paligemma-shapes");
const SHARDS = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];

const json = (path: string): any => JSON.parse(readFileSync(path, "utf8"));


/** The ModelConfig that config_full.json (every HF field, defaults included) describes, mapped by hand. */
function fromFullConfig(full: any) {
  const v = full.vision_config;
  const t = full.text_config;
  return {
    variant: t.model_type === "gemma2" ? "paligemma2" : "paligemma",
    vision: {
      imageSize: v.image_size, patchSize: v.patch_size, hidden: v.hidden_size, layers: v.num_hidden_layers,
      heads: v.num_attention_heads, intermediate: v.intermediate_size, layerNormEps: v.layer_norm_eps,
    },
    text: {
      family: t.model_type, vocab: t.vocab_size, hidden: t.hidden_size, intermediate: t.intermediate_size,
      layers: t.num_hidden_layers, heads: t.num_attention_heads, kvHeads: t.num_key_value_heads, headDim: t.head_dim,
      rmsNormEps: t.rms_norm_eps, ropeTheta: t.rope_theta, queryPreAttnScalar: t.query_pre_attn_scalar ?? t.head_dim,
      attnLogitSoftcap: t.attn_logit_softcapping ?? null, finalLogitSoftcap: t.final_logit_softcapping ?? null,
      slidingWindow: t.sliding_window ?? null,
    },
    projectionDim: full.projection_dim,
    imageTokens: t.num_image_tokens,
    tokens: { bos: full.bos_token_id, eos: full.eos_token_id, pad: full.pad_token_id, image: full.image_token_index },
  };
}

/** Bitwise comparison of every tensor read through Checkpoint with an independent decode of the raw bytes. */
async function expectExactWeights(ckpt: Checkpoint, files: string[]): Promise<number> {
  let count = 0;
  for (const file of files) {
    for (const [name, raw] of readRaw(file)) {
      const got = await ckpt.read(name);
      const want = new Float32Array(raw.bytes.length / (raw.dtype === "F32" ? 4 : 2));
      const view = new DataView(want.buffer);
      for (let i = 0; i < want.length; i++) {
        const bits = raw.dtype === "F32" ? raw.bytes.readUInt32LE(4 * i) : raw.bytes.readUInt16LE(2 * i) * 65536;
        view.setUint32(4 * i, bits, true);
      }
      expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer)), name).toBe(true);
      count++;
    }
  }
  return count;
}

describe("the tiny goldens (single F32 model.safetensors)", () => {
  it.each([
    ["paligemma1-tiny", PG1],
    ["paligemma2-tiny", PG2],
  ])("%s: config equals config_full.json; tensors equal meta.json; weights exact", async (_name, dir) => {
    const ckpt = await Checkpoint.open(dir);
    expect(ckpt.config).toEqual(fromFullConfig(json(join(dir, "config_full.json"))));
    const meta = json(join(dir, "meta.json")).safetensors.tensors;
    expect(ckpt.tensorNames()).toEqual(Object.keys(meta).sort());
    for (const [name, m] of Object.entries<any>(meta)) {
      expect(ckpt.shape(name)).toEqual(m.shape);
      expect(ckpt.dtype(name)).toBe("F32");
    }
    expect(await expectExactWeights(ckpt, [join(dir, "model.safetensors")])).toBe(Object.keys(meta).length);
    expect(ckpt.preprocessor).toEqual({ size: 56, rescale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], resample: "bicubic" });
    expect(ckpt.tokenizerJsonPath).toBeNull();
    ckpt.close();
  });

  it("paligemma1-tiny: Gemma 1 has multi-query attention and no Gemma 2 extras", async () => {
    const { config } = await Checkpoint.open(PG1);
    expect(config.text).toMatchObject({ family: "gemma", kvHeads: 1, headDim: 16, queryPreAttnScalar: 16, attnLogitSoftcap: null, finalLogitSoftcap: null, slidingWindow: null });
    expect(config.variant).toBe("paligemma");
  });

  it("paligemma2-tiny: head_dim 24, query scalar 32, window 8, caps 8 / 3", async () => {
    const { config } = await Checkpoint.open(PG2);
    expect(config.text).toMatchObject({ family: "gemma2", headDim: 24, queryPreAttnScalar: 32, slidingWindow: 8, attnLogitSoftcap: 8, finalLogitSoftcap: 3 });
    expect(config.tokens.image).toBe(399);
  });
});

describe("paligemma-shapes (sharded BF16)", () => {
  it("config matches its README", async () => {
    const { config } = await Checkpoint.open(SHAPES);
    expect(config).toEqual({
      variant: "paligemma2",
      vision: { imageSize: 96, patchSize: 16, hidden: 128, layers: 4, heads: 4, intermediate: 384, layerNormEps: 1e-6 },
      text: {
        family: "gemma2", vocab: 1600, hidden: 192, intermediate: 512, layers: 4, heads: 4, kvHeads: 2, headDim: 48,
        rmsNormEps: 1e-6, ropeTheta: 10000, queryPreAttnScalar: 48, attnLogitSoftcap: 50, finalLogitSoftcap: 30,
        slidingWindow: 32,
      },
      projectionDim: 192,
      imageTokens: 36,
      tokens: { bos: 2, eos: 1, pad: 0, image: 1587 },
    });
  });

  it("preprocessor and tokenizer files", async () => {
    const ckpt = await Checkpoint.open(SHAPES);
    expect(ckpt.preprocessor).toEqual({ size: 96, rescale: 0.00392156862745098, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], resample: "bicubic" });
    expect(ckpt.tokenizerJsonPath).toBe(join(SHAPES, "tokenizer.json"));
    expect(ckpt.tokenizerConfigPath).toBe(join(SHAPES, "tokenizer_config.json"));
  });

  it("tensor list equals the index and meta.json; lm_head is tied (absent)", async () => {
    const ckpt = await Checkpoint.open(SHAPES);
    const index = json(join(SHAPES, "model.safetensors.index.json")).weight_map;
    expect(ckpt.tensorNames()).toEqual(Object.keys(index).sort());
    const meta = json(join(SHAPES_GOLDEN, "meta.json")).safetensors.tensors;
    expect(ckpt.tensorNames()).toEqual(Object.keys(meta).sort());
    for (const [name, m] of Object.entries<any>(meta)) expect([ckpt.shape(name), ckpt.dtype(name)]).toEqual([m.shape, "BF16"]);
    expect(ckpt.tensorNames()).not.toContain(hfNames.lmHead);
    expect(ckpt.shape(hfNames.textLayer(3).preFeedforwardLayernorm)).toEqual([192]);
    expect(ckpt.shape(hfNames.textLayer(0).kProj)).toEqual([96, 192]);
  });

  it("every BF16 tensor of both shards decodes exactly", async () => {
    const ckpt = await Checkpoint.open(SHAPES);
    expect(await expectExactWeights(ckpt, SHARDS.map((s) => join(SHAPES, s)))).toBe(117);
  });

  it("spot values: bf16 bits shifted into the high half", async () => {
    const ckpt = await Checkpoint.open(SHAPES);
    const raw = readRaw(join(SHAPES, SHARDS[0])).get(hfNames.embedTokens)!;
    const embed = await ckpt.read(hfNames.embedTokens);
    expect(embed.length).toBe(1600 * 192);
    const scratchView = new DataView(new ArrayBuffer(4));
    for (const i of [0, 1, 191, 192, 1587 * 192 + 5, 1600 * 192 - 1]) {
      scratchView.setUint16(0, raw.bytes.readUInt16LE(2 * i), false); // big-endian: bf16 bits are the high half
      scratchView.setUint16(2, 0, false);
      expect(embed[i]).toBe(scratchView.getFloat32(0, false));
    }
    expect(embed[0]).toBe(-0.48828125);
    const ln = await ckpt.read(hfNames.textLayer(0).inputLayernorm); // in shard 2
    expect(ln.length).toBe(192);
    expect(ln.some((x) => x !== 0)).toBe(true);
  });
});

