/**
 * The weight file of one MLP-part stage: decoder layer l cut by its MLP's intermediate dimension. No graph: only
 * the kernel engine runs parts (the caller sums the parts of a layer in order: out = x1 + post_ff_norm(Σ parts) for
 * Gemma 2, x1 + Σ parts for Gemma 1, x1 = the attention part's residual output).
 *
 * Tensors, named as converter/graphs/decoder.ts names them and encoded by the same helpers (ops.ts), in that order:
 *   first part only: dec.l{l}.input_norm.weight, dec.l{l}.attn.q|k|v|o, Gemma 2's dec.l{l}.post_attn_norm.weight
 *   every part:      the MLP's input norm (Gemma 2 dec.l{l}.pre_ff_norm, Gemma 1 dec.l{l}.post_attn_norm),
 *                    dec.l{l}.gate / dec.l{l}.up = rows [from, to) of gate_proj / up_proj  ([to − from, H]),
 *                    dec.l{l}.down = columns [from, to) of down_proj ([H, to − from]),
 *                    Gemma 2's dec.l{l}.post_ff_norm.weight
 * Bounds are multiples of the quantisation block, so each slice's blocks are blocks of the whole matrix: its bytes
 * are exactly those rows / block columns of the whole matrix's quantisation (test/converter/mlp-parts.test.ts).
 */
import type { WeightSink } from "./onnx/builder.ts";
import type { ModelConfig } from "../shared/model/config.ts";
import { linearTensors, rmsNormTensor, type StoredTensor, type WeightFormat } from "./graphs/ops.ts";
import type { TensorSource } from "./graphs/tensors.ts";
import { hfNames } from "./checkpoint/names.ts";

export interface MlpPartSpec {
  readonly from: number; // the layer
  readonly mlp: { readonly from: number; readonly to: number }; // intermediate rows
  readonly attention: boolean;
}

export function writeMlpPart(config: ModelConfig, spec: MlpPartSpec, weights: TensorSource, fmt: WeightFormat, sink: WeightSink): void {
  const t = config.text;
  const h = t.hidden;
  const q = t.heads * t.headDim;
  const kv = t.kvHeads * t.headDim;
  const w = hfNames.textLayer(spec.from);
  const p = `dec.l${spec.from}`;
  const gemma2 = t.family === "gemma2";
  const out: StoredTensor[] = [];
  const norm = (name: string, weight: string) => out.push(rmsNormTensor(`${p}.${name}`, weights.get(weight)));
  const lin = (name: string, m: Float32Array, outF: number, inF: number) => out.push(...linearTensors(fmt, `${p}.${name}`, m, outF, inF));

  if (spec.attention) {
    norm("input_norm", w.inputLayernorm);
    lin("attn.q", weights.get(w.qProj), q, h);
    lin("attn.k", weights.get(w.kProj), kv, h);
    lin("attn.v", weights.get(w.vProj), kv, h);
    lin("attn.o", weights.get(w.oProj), h, q);
    if (gemma2) norm("post_attn_norm", w.postAttentionLayernorm);
  }
  if (gemma2) norm("pre_ff_norm", w.preFeedforwardLayernorm);
  else norm("post_attn_norm", w.postAttentionLayernorm);
  const { from, to } = spec.mlp;
  const m = to - from;
  lin("gate", weights.get(w.gateProj).subarray(from * h, to * h), m, h); // gate_proj [I, H]: rows [from, to)
  lin("up", weights.get(w.upProj).subarray(from * h, to * h), m, h);
  lin("down", columns(weights.get(w.downProj), h, t.intermediate, from, to), h, m); // down_proj [H, I]: columns
  if (gemma2) norm("post_ff_norm", w.postFeedforwardLayernorm);

  for (const x of out) sink.append({ name: x.name, type: x.type, dims: x.dims }, x.bytes);
}

/** Columns [from, to) of a row-major [rows, cols] matrix, as [rows, to − from]. */
function columns(a: Float32Array, rows: number, cols: number, from: number, to: number): Float32Array {
  const m = to - from;
  const out = new Float32Array(rows * m);
  for (let r = 0; r < rows; r++) out.set(a.subarray(r * cols + from, r * cols + to), r * m);
  return out;
}
