/**
 * The decoder stages of a manifest grouped as the coordinator calls them: a stage of whole layers alone; the
 * parts of a layer cut by its MLP together, the one with the attention block first (the others take its output).
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
  /** The cut layer's post-feed-forward norm, once its stages are loaded (null for Gemma 1 or whole layers). */
  postFfNorm: Float32Array | null;
}

/** Groups `stages` (a manifest's decoder stages, in order). @throws ModelFormatError for a malformed cut. */
export function decoderGroups(stages: readonly ManifestStage[]): LayerGroup<ManifestStage>[] {
  const groups: LayerGroup<ManifestStage>[] = [];
  for (let i = 0; i < stages.length; ) {
    const s = stages[i];
    if (s.mlp === undefined) {
      groups.push({ layer: null, first: s, rest: [], postFfNorm: null });
      i++;
      continue;
    }
    let j = i;
    while (j < stages.length && stages[j].mlp !== undefined && stages[j].from === s.from) j++;
    const parts = stages.slice(i, j);
    if (parts[0].attention === false || parts.slice(1).some((p) => p.attention !== false)) {
      throw new ModelFormatError(`decoder layer ${s.from}: its first MLP part must hold the attention, and only it`);
    }
    groups.push({ layer: s.from, first: parts[0], rest: parts.slice(1), postFfNorm: null });
    i = j;
  }
  return groups;
}
