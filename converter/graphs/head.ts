/**
 * LM head over vocabulary rows [from, to): final RMSNorm → tied embedding projection → final soft-cap.
 *
 *   hidden  float32[L, H]   output of the last decoder layer
 *   logits  float32[L, to - from]
 *
 * The vocabulary is split when one runtime cannot hold the whole table; the runtime concatenates slices.
 * The same weight bytes double as the token-embedding table (read row- or column-wise by the runtime).
 */
import { GraphBuilder, type WeightSink } from "../onnx/builder.ts";
import type { ModelConfig } from "../../shared/model/config.ts";
import { linear, rmsNorm, softcap, type WeightFormat } from "./ops.ts";

export interface HeadStageSpec {
  readonly from: number;
  readonly to: number;
}

/** `embedRows` = embedding rows [from, to) as float32[(to-from)·H]; `finalNorm` = the final RMSNorm weight. */
export function buildHeadStage(
  config: ModelConfig,
  spec: HeadStageSpec,
  embedRows: Float32Array,
  finalNorm: Float32Array,
  fmt: WeightFormat,
  sink: WeightSink,
): Uint8Array {
  const t = config.text;
  const rows = spec.to - spec.from;
  const b = new GraphBuilder(`head_${spec.from}_${spec.to}`, sink);
  const x = b.input("hidden", "FLOAT", ["L", t.hidden]);
  const normed = rmsNorm(b, x, "head.norm", finalNorm, t.rmsNormEps);
  const logits = linear(b, fmt, normed, "head.embed", embedRows, rows, t.hidden);
  b.output(softcap(b, logits, "head.softcap", t.finalLogitSoftcap), "logits", "FLOAT", ["L", rows]);
  return b.toBytes();
}
