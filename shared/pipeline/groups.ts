/**
 * The decoder stages of a manifest grouped as the coordinator calls them: a stage of whole layers alone; the
 * parts of a layer cut by its MLP together, the one with the attention block first. In a sequential cut the others
 * take its output (two hops); in a parallel cut (manifest `cut: "parallel"`) every part holds the attention and all
 * take the layer's input at once (one hop).
 */
import { ModelFormatError } from "../errors.ts";
import type { ManifestStage } from "../model/manifest.ts";

/** One hop of the decoder pass (`T`: a manifest stage, or a client of one). */
export interface LayerGroup<T> {
  /** The decoder layer cut into parts, or null for a stage of whole layers. */
  readonly layer: number | null;
  /** The stage of whole layers, or the attention part of a cut layer. */
  readonly first: T;
  /** The other parts of a cut layer, in part order (empty for whole layers). */
  readonly rest: readonly T[];
  /** Whether every part holds the attention and all run on the layer's input in one hop (a parallel cut). */
  readonly parallel: boolean;
  /** The cut layer's post-feed-forward norm, once its stages are loaded (null for Gemma 1 or whole layers). */
  postFfNorm: Float32Array | null;
}

/** Groups `stages` (a manifest's decoder stages, in order). @throws ModelFormatError for a malformed cut. */
export function decoderGroups(stages: readonly ManifestStage[]): LayerGroup<ManifestStage>[] {
  const groups: LayerGroup<ManifestStage>[] = [];
  for (let i = 0; i < stages.length; ) {
    const s = stages[i];
    if (s.mlp === undefined) {
      groups.push({ layer: null, first: s, rest: [], parallel: false, postFfNorm: null });
      i++;
      continue;
    }
    let j = i;
    while (j < stages.length && stages[j].mlp !== undefined && stages[j].from === s.from) j++;
    const parts = stages.slice(i, j);
    const parallel = parts[0].cut === "parallel";
    if (parallel) {
      if (parts.some((p) => p.cut !== "parallel" || p.attention === false)) throw new ModelFormatError(`decoder layer ${s.from}: every part of a parallel cut must say so and hold the attention`);
    } else if (parts[0].attention === false || parts.slice(1).some((p) => p.attention !== false || p.cut === "parallel")) {
      throw new ModelFormatError(`decoder layer ${s.from}: its first MLP part must hold the attention, and only it`);
    }
    groups.push({ layer: s.from, first: parts[0], rest: parts.slice(1), parallel, postFfNorm: null });
    i = j;
  }
  return groups;
}
