/**
 * Inputs for each benchmarked stage, as plain float32 arrays (no onnxruntime import): each runtime wraps them
 * in its own tensor type. They mirror what shared/engine/runtime.ts feeds at run time.
 */
import { attentionMasks, ropeTables } from "../shared/engine/positions.ts";
import { randomNormal } from "./synthetic.ts";
import type { BenchShape } from "./shapes.ts";

/** One graph input: float32 data with its shape. */
export interface FeedSpec {
  readonly name: string;
  readonly dims: readonly number[];
  readonly data: Float32Array;
}

/** Which part of the model a benchmark graph is (the JSON contract's `stage`). */
export type StageName = "decode_layer" | "prefill_layer" | "vision_layer" | "head";
export const STAGE_NAMES: readonly StageName[] = ["decode_layer", "prefill_layer", "vision_layer", "head"];

/**
 * One decode step: a single new token at cache index `past` (1-based position past + 1) over a full cache.
 *
 *   hidden            float32[1, H]
 *   rope_cos/rope_sin float32[1, hd]
 *   mask_global       float32[1, past + 1]        all visible (zeros)
 *   past_key_i        float32[kvHeads, past, hd]  (and past_value_i), per layer in the stage
 */
export function decodeFeeds(shape: BenchShape): FeedSpec[] {
  const t = shape.config.text;
  const past = shape.pastTokens;
  const { cos, sin } = ropeTables(t, past + 1, 1);
  const masks = attentionMasks(t, past, 1);
  const feeds: FeedSpec[] = [
    { name: "hidden", dims: [1, t.hidden], data: randomNormal("feed.hidden", t.hidden, 1) },
    { name: "rope_cos", dims: [1, t.headDim], data: cos },
    { name: "rope_sin", dims: [1, t.headDim], data: sin },
    { name: "mask_global", dims: [1, past + 1], data: masks.global },
  ];
  if (masks.sliding) feeds.push({ name: "mask_sliding", dims: [1, past + 1], data: masks.sliding });
  for (let i = shape.decoder.from; i < shape.decoder.to; i++) {
    const n = t.kvHeads * past * t.headDim;
    feeds.push({ name: `past_key_${i}`, dims: [t.kvHeads, past, t.headDim], data: randomNormal(`feed.past_key_${i}`, n, 1) });
    feeds.push({ name: `past_value_${i}`, dims: [t.kvHeads, past, t.headDim], data: randomNormal(`feed.past_value_${i}`, n, 1) });
  }
  return feeds;
}

/**
 * A prefill: `prefillRows` new rows from an empty cache (positions 1 … rows), all of them PaliGemma's
 * bidirectional prefix (image tokens + `<bos>` + prefix + `\n`), so every mask entry is visible.
 *
 *   hidden            float32[rows, H]
 *   rope_cos/rope_sin float32[rows, hd]
 *   mask_global       float32[rows, rows]       zeros (prefix-LM: the prompt sees itself both ways)
 *   past_key_i        float32[kvHeads, 0, hd]   (and past_value_i): nothing cached yet
 */
export function prefillFeeds(shape: BenchShape): FeedSpec[] {
  const t = shape.config.text;
  const rows = shape.prefillRows;
  const { cos, sin } = ropeTables(t, 1, rows);
  const masks = attentionMasks(t, 0, rows);
  const feeds: FeedSpec[] = [
    { name: "hidden", dims: [rows, t.hidden], data: randomNormal("feed.prefill_hidden", rows * t.hidden, 1) },
    { name: "rope_cos", dims: [rows, t.headDim], data: cos },
    { name: "rope_sin", dims: [rows, t.headDim], data: sin },
    { name: "mask_global", dims: [rows, rows], data: masks.global },
  ];
  if (masks.sliding) feeds.push({ name: "mask_sliding", dims: [rows, rows], data: masks.sliding });
  for (let i = shape.decoder.from; i < shape.decoder.to; i++) {
    feeds.push({ name: `past_key_${i}`, dims: [t.kvHeads, 0, t.headDim], data: new Float32Array(0) });
    feeds.push({ name: `past_value_${i}`, dims: [t.kvHeads, 0, t.headDim], data: new Float32Array(0) });
  }
  return feeds;
}

/** Vision layers after the patch embedding: vision_hidden float32[N, Dv]. */
export function visionFeeds(shape: BenchShape): FeedSpec[] {
  const { imageTokens: n, vision } = shape.config;
  return [{ name: "vision_hidden", dims: [n, vision.hidden], data: randomNormal("feed.vision_hidden", n * vision.hidden, 1) }];
}

/** The head for one decoded token: hidden float32[1, H]. */
export function headFeeds(shape: BenchShape): FeedSpec[] {
  const h = shape.config.text.hidden;
  return [{ name: "hidden", dims: [1, h], data: randomNormal("feed.head_hidden", h, 1) }];
}

/** The manifest stage kind a benchmark stage is cut from. */
export function stageKind(stage: StageName): "vision" | "decoder" | "head" {
  return stage === "vision_layer" ? "vision" : stage === "head" ? "head" : "decoder";
}
