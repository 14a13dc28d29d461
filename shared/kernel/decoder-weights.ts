/**
 * Declares a decoder or head stage's tensors in a {@link StageFile} (names as converter/graphs/decoder.ts and
 * head.ts write them). A decoder stage holds whole layers, or one part of a layer whose MLP the planner cut by its
 * intermediate dimension (`mlp: {from, to}`, and `attention: false` for a part without the attention block):
 * every part computes gate/up/down over its slice and the caller sums the parts in order.
 */
import type { Manifest, ManifestStage } from "../model/manifest.ts";
import type { KernelMatrix } from "./matrix.ts";
import type { StageFile } from "./stage-file.ts";

/** The attention block of a layer; norm weights are f32[H] holding Gemma's (1 + w). */
export interface AttentionWeights {
  readonly inputNorm: number;
  /** Gemma 2 normalises the attention output before the residual; null for Gemma 1. */
  readonly postAttnNorm: number | null;
  readonly q: KernelMatrix; // [heads·hd, H]
  readonly k: KernelMatrix; // [kvHeads·hd, H]
  readonly v: KernelMatrix; // [kvHeads·hd, H]
  readonly o: KernelMatrix; // [H, heads·hd]
}

/** The MLP over intermediate rows [from, to). */
export interface MlpPart {
  readonly from: number;
  readonly to: number;
  readonly gate: KernelMatrix; // [to − from, H]
  readonly up: KernelMatrix; // [to − from, H]
  readonly down: KernelMatrix; // [H, to − from]
}

/** What one stage holds of decoder layer `index`. */
export interface LayerSlice {
  readonly index: number;
  readonly attention: AttentionWeights | null;
  /** The MLP's input norm: Gemma 2's pre_feedforward_layernorm, Gemma 1's post_attention_layernorm. */
  readonly mlpNorm: number;
  /** Gemma 2's post_feedforward_layernorm over the summed parts; null for Gemma 1. */
  readonly postFfNorm: number | null;
  readonly parts: readonly MlpPart[];
  /**
   * Whether the parts cover the whole MLP. When they do not (a stage holding one part of a cut layer), running
   * the slice yields the parts' sum before the post-feed-forward norm and residual, which the caller applies
   * once every part's sum is in (see {@link LayerSlice.postFfNorm}).
   */
  readonly complete: boolean;
}

/** One vocabulary slice of the tied LM head: rows [from, to). */
export interface HeadSlice {
  readonly from: number;
  readonly to: number;
  readonly norm: number; // final RMSNorm (1 + w), f32[H]
  readonly table: KernelMatrix; // [to − from, H]
}

/** The optional part fields of a decoder stage (absent: whole layers). */
function partOf(stage: ManifestStage, intermediate: number): { attention: boolean; from: number; to: number } {
  const s = stage as ManifestStage & { mlp?: { from: number; to: number }; attention?: boolean };
  return { attention: s.attention ?? true, from: s.mlp?.from ?? 0, to: s.mlp?.to ?? intermediate };
}

/** Declares the layers of one decoder stage. */
export function declareDecoderStage(manifest: Manifest, stage: ManifestStage, file: StageFile): LayerSlice[] {
  const t = manifest.config.text;
  const gemma2 = t.family === "gemma2";
  const q = t.heads * t.headDim;
  const kv = t.kvHeads * t.headDim;
  const part = partOf(stage, t.intermediate);
  const vec = (name: string) => file.floats(name, [t.hidden]);
  const slices: LayerSlice[] = [];
  for (let i = stage.from; i < stage.to; i++) {
    const p = `dec.l${i}`;
    const attention: AttentionWeights | null = part.attention
      ? {
          inputNorm: vec(`${p}.input_norm.weight`),
          postAttnNorm: gemma2 ? vec(`${p}.post_attn_norm.weight`) : null,
          q: file.matrix(`${p}.attn.q`, q, t.hidden),
          k: file.matrix(`${p}.attn.k`, kv, t.hidden),
          v: file.matrix(`${p}.attn.v`, kv, t.hidden),
          o: file.matrix(`${p}.attn.o`, t.hidden, q),
        }
      : null;
    const rows = part.to - part.from;
    slices.push({
      index: i,
      attention,
      mlpNorm: vec(gemma2 ? `${p}.pre_ff_norm.weight` : `${p}.post_attn_norm.weight`),
      postFfNorm: gemma2 ? vec(`${p}.post_ff_norm.weight`) : null,
      parts: [{ from: part.from, to: part.to, gate: file.matrix(`${p}.gate`, rows, t.hidden), up: file.matrix(`${p}.up`, rows, t.hidden), down: file.matrix(`${p}.down`, t.hidden, rows) }],
      complete: part.from === 0 && part.to === t.intermediate,
    });
  }
  return slices;
}

/** Declares one head stage: the final norm and the embedding rows [from, to). */
export function declareHeadStage(manifest: Manifest, stage: ManifestStage, file: StageFile): HeadSlice {
  const h = manifest.config.text.hidden;
  return { from: stage.from, to: stage.to, norm: file.floats("head.norm.weight", [h]), table: file.matrix("head.embed", stage.to - stage.from, h) };
}

/** Merges the slices of several stages into layers (attention from the stage that has it, parts in order). */
export function mergeLayers(slices: readonly LayerSlice[], intermediate: number): LayerSlice[] {
  const byLayer = new Map<number, LayerSlice[]>();
  for (const s of slices) byLayer.set(s.index, [...(byLayer.get(s.index) ?? []), s]);
  return [...byLayer.entries()]
    .sort(([a], [b]) => a - b)
    .map(([index, list]) => {
      const attention = list.find((s) => s.attention)?.attention ?? null;
      const parts = list.flatMap((s) => s.parts).sort((a, b) => a.from - b.from);
      const complete = parts[0]?.from === 0 && parts.at(-1)?.to === intermediate && parts.every((p, i) => i === 0 || p.from === parts[i - 1].to);
      return { index, attention, mlpNorm: list[0].mlpNorm, postFfNorm: list[0].postFfNorm, parts, complete };
    });
}
