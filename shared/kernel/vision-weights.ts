/**
 * Declares a vision stage's tensors in a {@link StageFile} (names as converter/graphs/vision.ts writes them):
 * the SigLIP encoder layers as W[n, k] matrices in the stored format (int8/int4 stay quantised; gemmW
 * dequantises panel by panel) with biases padded for gemmW, the patch embedding and position table on the first
 * stage, the post-LayerNorm and the projector on the last.
 */
import type { Manifest, ManifestStage } from "../model/manifest.ts";
import type { KernelLinear } from "./matrix.ts";
import type { StageFile } from "./stage-file.ts";

/** A LayerNorm's parameters in kernel memory (f32[n] each). */
export interface LayerNormWeights {
  readonly w: number;
  readonly b: number;
}

/** One SigLIP encoder layer. */
export interface VisionLayerWeights {
  readonly ln1: LayerNormWeights;
  readonly ln2: LayerNormWeights;
  readonly q: KernelLinear; // [D, D]
  readonly k: KernelLinear;
  readonly v: KernelLinear;
  readonly o: KernelLinear;
  readonly fc1: KernelLinear; // [I, D]
  readonly fc2: KernelLinear; // [D, I]
}

/** What one vision stage holds. */
export interface VisionSlice {
  readonly from: number;
  readonly to: number;
  /** First stage: the patch embedding (conv as W[D, 3·p²]) and the position table f32[N, D]. */
  readonly embed: { readonly patch: KernelLinear; readonly pos: number } | null;
  readonly layers: readonly VisionLayerWeights[];
  /** Last stage: post-LayerNorm and the projector [P, D]. */
  readonly head: { readonly post: LayerNormWeights; readonly proj: KernelLinear } | null;
}

/** Declares one vision stage. */
export function declareVisionStage(manifest: Manifest, stage: ManifestStage, file: StageFile): VisionSlice {
  const c = manifest.config;
  const v = c.vision;
  const d = v.hidden;
  const linear = (name: string, n: number, k: number): KernelLinear => ({ m: file.matrix(name, n, k), bias: file.floats(`${name}.bias`, [n], 8) });
  const norm = (name: string): LayerNormWeights => ({ w: file.floats(`${name}.weight`, [d]), b: file.floats(`${name}.bias`, [d]) });
  const pp = 3 * v.patchSize ** 2;
  const embed =
    stage.from === 0
      ? {
          patch: { m: file.rowsMatrix("vis.patch.weight", [d, 3, v.patchSize, v.patchSize], d, pp), bias: file.floats("vis.patch.bias", [d], 8) },
          pos: file.floats("vis.pos", [c.imageTokens, d]),
        }
      : null;
  const layers: VisionLayerWeights[] = [];
  for (let i = stage.from; i < stage.to; i++) {
    const p = `vis.l${i}`;
    layers.push({
      ln1: norm(`${p}.ln1`),
      ln2: norm(`${p}.ln2`),
      q: linear(`${p}.q`, d, d),
      k: linear(`${p}.k`, d, d),
      v: linear(`${p}.v`, d, d),
      o: linear(`${p}.o`, d, d),
      fc1: linear(`${p}.fc1`, v.intermediate, d),
      fc2: linear(`${p}.fc2`, d, v.intermediate),
    });
  }
  const head = stage.to === v.layers ? { post: norm("vis.post_ln"), proj: linear("proj", c.projectionDim, d) } : null;
  return { from: stage.from, to: stage.to, embed, layers, head };
}
