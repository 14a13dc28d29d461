/**
 * Gemma / Gemma 2 decoder stage over layers [from, to). One graph serves both the prefill (L = prompt
 * length, P = 0) and each decode step (L = 1, P = tokens so far), so a stage's weights are loaded once.
 *
 *   hidden            float32[L, H]            decoder input (embeddings already × sqrt(H))
 *   rope_cos/rope_sin float32[L, hd]           for 1-based positions, rotate-half convention
 *   mask_global       float32[L, P+L]          additive: 0 visible, finfo(float32).min hidden
 *   mask_sliding      float32[L, P+L]          the same with Gemma 2's window (only when a layer slides)
 *   past_key_i        float32[kvHeads, P, hd]  → present_key_i float32[kvHeads, P+L, hd]
 *   hidden_out        float32[L, H]
 *
 * Attention: scores = (q·kᵀ)·queryPreAttnScalar^-0.5 → soft-cap → + mask → softmax (transformers v4.47).
 */
import { GraphBuilder, type Value, type WeightSink } from "../onnx/builder.ts";
import { isSlidingLayer, type ModelConfig } from "../../shared/model/config.ts";
import { geluTanh, linear, reshape, rmsNorm, softcap, transpose, type WeightFormat } from "./ops.ts";
import type { TensorSource } from "./tensors.ts";
import { hfNames } from "../checkpoint/names.ts";

export interface DecoderStageSpec {
  readonly from: number;
  readonly to: number;
}

interface Inputs {
  cos: Value;
  sin: Value;
  maskGlobal: Value;
  maskSliding: Value | null;
}

export function buildDecoderStage(
  config: ModelConfig,
  spec: DecoderStageSpec,
  weights: TensorSource,
  fmt: WeightFormat,
  sink: WeightSink,
): Uint8Array {
  const t = config.text;
  const b = new GraphBuilder(`decoder_${spec.from}_${spec.to}`, sink);
  const sliding = range(spec).some((i) => isSlidingLayer(t, i));
  let x = b.input("hidden", "FLOAT", ["L", t.hidden]);
  const inputs: Inputs = {
    cos: b.input("rope_cos", "FLOAT", ["L", t.headDim]),
    sin: b.input("rope_sin", "FLOAT", ["L", t.headDim]),
    maskGlobal: b.input("mask_global", "FLOAT", ["L", "T"]),
    maskSliding: sliding ? b.input("mask_sliding", "FLOAT", ["L", "T"]) : null,
  };
  for (const i of range(spec)) x = decoderLayer(b, config, weights, fmt, inputs, x, i);
  b.output(x, "hidden_out", "FLOAT", ["L", t.hidden]);
  return b.toBytes();
}

function range(spec: DecoderStageSpec): number[] {
  return Array.from({ length: spec.to - spec.from }, (_, k) => spec.from + k);
}

function decoderLayer(
  b: GraphBuilder,
  config: ModelConfig,
  weights: TensorSource,
  fmt: WeightFormat,
  inputs: Inputs,
  x: Value,
  i: number,
): Value {
  const t = config.text;
  const w = hfNames.textLayer(i);
  const p = `dec.l${i}`;
  const gemma2 = t.family === "gemma2";
  const norm = (v: Value, name: string, weight: string) => rmsNorm(b, v, `${p}.${name}`, weights.get(weight), t.rmsNormEps);
  const lin = (v: Value, name: string, weight: string, outF: number, inF: number) =>
    linear(b, fmt, v, `${p}.${name}`, weights.get(weight), outF, inF);

  const h = norm(x, "input_norm", w.inputLayernorm);
  let attn = attention(b, config, inputs, h, i, lin);
  if (gemma2) attn = norm(attn, "post_attn_norm", w.postAttentionLayernorm);
  const x1 = b.op("Add", [x, attn], {}, `${p}.attn_res`);

  const h2 = gemma2 ? norm(x1, "pre_ff_norm", w.preFeedforwardLayernorm) : norm(x1, "post_attn_norm", w.postAttentionLayernorm);
  const gate = geluTanh(b, lin(h2, "gate", w.gateProj, t.intermediate, t.hidden), `${p}.gelu`);
  const up = lin(h2, "up", w.upProj, t.intermediate, t.hidden);
  let mlp = lin(b.op("Mul", [gate, up], {}, `${p}.gated`), "down", w.downProj, t.hidden, t.intermediate);
  if (gemma2) mlp = norm(mlp, "post_ff_norm", w.postFeedforwardLayernorm);
  return b.op("Add", [x1, mlp], {}, `${p}.out`);
}

type Lin = (v: Value, name: string, weight: string, outF: number, inF: number) => Value;

function attention(b: GraphBuilder, config: ModelConfig, inputs: Inputs, h: Value, i: number, lin: Lin): Value {
  const t = config.text;
  const w = hfNames.textLayer(i);
  const p = `dec.l${i}.attn`;
  const hd = t.headDim;
  const group = t.heads / t.kvHeads;
  const project = (name: string, weight: string, heads: number) => {
    const y = lin(h, `attn.${name}`, weight, heads * hd, t.hidden); // [L, heads·hd]
    return transpose(b, reshape(b, y, [-1, heads, hd], `${p}.${name}.split`), [1, 0, 2], `${p}.${name}.heads`); // [heads, L, hd]
  };
  const q = rope(b, project("q", w.qProj, t.heads), inputs, `${p}.q_rope`);
  const k = rope(b, project("k", w.kProj, t.kvHeads), inputs, `${p}.k_rope`);
  const v = project("v", w.vProj, t.kvHeads);

  const pastK = b.input(`past_key_${i}`, "FLOAT", [t.kvHeads, "P", hd]);
  const pastV = b.input(`past_value_${i}`, "FLOAT", [t.kvHeads, "P", hd]);
  const keys = b.op("Concat", [pastK, k], { axis: 1 }, `${p}.keys`); // [kvHeads, T, hd]
  const values = b.op("Concat", [pastV, v], { axis: 1 }, `${p}.values`);
  b.output(keys, `present_key_${i}`, "FLOAT", [t.kvHeads, "T", hd]);
  b.output(values, `present_value_${i}`, "FLOAT", [t.kvHeads, "T", hd]);

  // Grouped-query attention without repeating K/V: query heads g·kv … g·kv+g-1 share kv head `kv`.
  const qg = reshape(b, q, [t.kvHeads, group, -1, hd], `${p}.q_grouped`); // [kvHeads, group, L, hd]
  const kT = reshape(b, transpose(b, keys, [0, 2, 1], `${p}.keys_t`), [t.kvHeads, 1, hd, -1], `${p}.keys_t4`); // [kvHeads, 1, hd, T]
  const raw = b.op("MatMul", [qg, kT], {}, `${p}.qk`); // [kvHeads, group, L, T]
  const scaled = b.op("Mul", [raw, b.constF32(`${p}.scale`, [t.queryPreAttnScalar ** -0.5], [])], {}, `${p}.scaled`);
  const capped = softcap(b, scaled, `${p}.softcap`, t.attnLogitSoftcap);
  const mask = isSlidingLayer(t, i) ? inputs.maskSliding! : inputs.maskGlobal;
  const probs = b.op("Softmax", [b.op("Add", [capped, mask], {}, `${p}.masked`)], { axis: -1 }, `${p}.probs`);
  const v4 = reshape(b, values, [t.kvHeads, 1, -1, hd], `${p}.values4`); // [kvHeads, 1, T, hd]
  const ctx = b.op("MatMul", [probs, v4], {}, `${p}.ctx`); // [kvHeads, group, L, hd]
  const heads = reshape(b, ctx, [t.heads, -1, hd], `${p}.ctx_heads`); // [heads, L, hd]
  const merged = reshape(b, transpose(b, heads, [1, 0, 2], `${p}.ctx_t`), [-1, t.heads * hd], `${p}.merged`);
  return lin(merged, "attn.o", w.oProj, t.hidden, t.heads * hd);
}

/** x·cos + rotate_half(x)·sin, rotate_half(x) = [-x₂, x₁] over the two halves of head_dim. */
function rope(b: GraphBuilder, x: Value, inputs: Inputs, name: string): Value {
  const [x1, x2] = b.opN("Split", [x], 2, { axis: -1, num_outputs: 2 }, `${name}.half`);
  const rotated = b.op("Concat", [b.op("Neg", [x2], {}, `${name}.neg`), x1], { axis: -1 }, `${name}.rot`);
  const a = b.op("Mul", [x, inputs.cos], {}, `${name}.cos`);
  return b.op("Add", [a, b.op("Mul", [rotated, inputs.sin], {}, `${name}.sin`)], {}, name);
}
