/**
 * Splits a model into stages by layer range (vision, decoder) and vocabulary range (head) so that each
 * stage's weight file stays under a byte budget (`--max-shard-mb`). Without a budget each part is one stage.
 * Planning by resident size (`--max-stage-mb`) is plan-memory.ts.
 */
import type { ModelConfig } from "../shared/model/config.ts";
import type { StageSpec } from "../shared/model/stage-memory.ts";
import { isQuantized, type WeightDtype } from "../shared/model/weights.ts";

export interface PlannedStage extends StageSpec {
  /** What the planner budgeted: weight-file bytes (this planner) or resident bytes (plan-memory.ts). */
  readonly bytes: number;
}

export interface WeightBudget {
  readonly dtype: WeightDtype;
  readonly blockSize: number;
}

/** Bytes of an [outF, inF] matrix weight in the given format. */
export function matrixBytes(outF: number, inF: number, w: WeightBudget): number {
  const align = 2 * 64; // each tensor starts 64-byte aligned in the weight file (weights + scales)
  if (w.dtype === "fp32") return 4 * outF * inF + align;
  if (w.dtype === "fp16") return 2 * outF * inF + align;
  const blocks = Math.ceil(inF / w.blockSize);
  const bits = w.dtype === "int8" ? 8 : 4;
  return outF * blocks * ((w.blockSize * bits) / 8) + 4 * outF * blocks + align;
}

export function visionLayerBytes(c: ModelConfig, w: WeightBudget): number {
  const v = c.vision;
  return 4 * matrixBytes(v.hidden, v.hidden, w) + matrixBytes(v.intermediate, v.hidden, w) + matrixBytes(v.hidden, v.intermediate, w) + 10 * 64 + 4 * (9 * v.hidden + v.intermediate);
}

export function decoderLayerBytes(c: ModelConfig, w: WeightBudget): number {
  const t = c.text;
  const q = t.heads * t.headDim;
  const kv = t.kvHeads * t.headDim;
  const attn = matrixBytes(q, t.hidden, w) + 2 * matrixBytes(kv, t.hidden, w) + matrixBytes(t.hidden, q, w);
  const mlp = 2 * matrixBytes(t.intermediate, t.hidden, w) + matrixBytes(t.hidden, t.intermediate, w);
  return attn + mlp + 4 * (4 * t.hidden + 64);
}

/**
 * Plans stages; throws when one layer alone exceeds the budget. `maxBytes` null = one stage per part.
 * `headRows` caps the vocabulary rows per head stage further (used by tests to force a vocabulary split).
 */
export function planStages(c: ModelConfig, w: WeightBudget, maxBytes: number | null, headRows?: number): PlannedStage[] {
  const v = c.vision;
  const first = 4 * (v.hidden * 3 * v.patchSize ** 2 + v.hidden + c.imageTokens * v.hidden);
  const last = 4 * 2 * v.hidden + matrixBytes(c.projectionDim, v.hidden, w) + 4 * c.projectionDim;
  const vision = packLayers("vision", v.layers, visionLayerBytes(c, w), maxBytes, (i) => (i === 0 ? first : 0) + (i === v.layers - 1 ? last : 0));
  const decoder = packLayers("decoder", c.text.layers, decoderLayerBytes(c, w), maxBytes, () => 0);
  return [...vision, ...decoder, ...planHead(c, w, maxBytes, headRows)];
}

function packLayers(
  kind: "vision" | "decoder",
  layers: number,
  perLayer: number,
  maxBytes: number | null,
  extra: (i: number) => number,
): PlannedStage[] {
  const stages: PlannedStage[] = [];
  let from = 0;
  let bytes = 0;
  for (let i = 0; i < layers; i++) {
    const add = perLayer + extra(i);
    if (maxBytes !== null && add > maxBytes) {
      throw new Error(`${kind} layer ${i} needs ${mb(add)} MB of weights, over --max-shard-mb ${mb(maxBytes)}`);
    }
    if (maxBytes !== null && i > from && bytes + add > maxBytes) {
      stages.push({ kind, from, to: i, bytes });
      from = i;
      bytes = 0;
    }
    bytes += add;
  }
  stages.push({ kind, from, to: layers, bytes });
  return stages;
}

function planHead(c: ModelConfig, w: WeightBudget, maxBytes: number | null, headRows = Infinity): PlannedStage[] {
  const t = c.text;
  const perRow = matrixBytes(1, t.hidden, w) - matrixBytes(0, t.hidden, w); // a row's bytes, without alignment
  const fixed = 4 * t.hidden + 3 * 64 + matrixBytes(0, t.hidden, w); // final norm, alignment
  let rows = t.vocab;
  if (maxBytes !== null) {
    rows = Math.floor((maxBytes - fixed) / perRow);
    if (isQuantized(w.dtype)) rows = Math.max(rows, 0);
    if (rows < 1) throw new Error(`the LM head needs ${mb(perRow + fixed)} MB per vocabulary row, over --max-shard-mb ${mb(maxBytes)}`);
    rows = Math.min(rows, t.vocab);
  }
  rows = Math.min(rows, headRows);
  const stages: PlannedStage[] = [];
  for (let from = 0; from < t.vocab; from += rows) {
    const to = Math.min(t.vocab, from + rows);
    stages.push({ kind: "head", from, to, bytes: fixed + perRow * (to - from) });
  }
  return stages;
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(2);
}
