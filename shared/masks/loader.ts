/**
 * The mask decoder of a converted model: `manifest.vae` names one weight file of packed float32 tensors
 * (written by converter/vae.ts). It is read and checked (size, sha256) once, when the first segment answer
 * needs it; callers cache the result per isolate (it is immutable model data, like the model's own weights).
 */
import type { ModelStore } from "../engine/types.ts";
import { fetchFile } from "../engine/files.ts";
import { ModelFormatError } from "../errors.ts";
import type { Manifest } from "../model/manifest.ts";
import { encodeCocoRle, type CocoRle } from "./coco-rle.ts";
import { placeMask, type NormalizedBox, type PixelSize } from "./placement.ts";
import { decodeMask } from "./vae-decoder.ts";
import { vaeWeights, VAE_MASK_SIZE, type VaeWeights } from "./vae-weights.ts";

/** Decodes segments into masks. */
export interface MaskDecoder {
  readonly weights: VaeWeights;
  /** The raw decoder output, float32[64, 64]. */
  decode(codes: readonly number[]): Float32Array;
  /** A segment's binary mask over the whole image, as COCO compressed RLE (shared/masks/placement.ts). */
  segmentMask(codes: readonly number[], box: NormalizedBox, size: PixelSize): CocoRle;
}

/** A mask decoder over loaded weights. */
export function maskDecoder(weights: VaeWeights): MaskDecoder {
  return {
    weights,
    decode: (codes) => decodeMask(weights, codes),
    segmentMask: (codes, box, size) => encodeCocoRle(placeMask(decodeMask(weights, codes), box, size), size.width, size.height),
  };
}

/**
 * Loads the model's mask decoder, or null when the manifest has no `vae` (masks are then not decoded).
 * @throws ModelFormatError when the file is missing, fails its checksum, or its tensors do not fit together
 */
export async function loadMaskDecoder(store: ModelStore, manifest: Manifest, verify = true): Promise<MaskDecoder | null> {
  const vae = manifest.vae;
  if (!vae) return null;
  const bytes = await fetchFile(store, manifest, vae.file, verify);
  const entries = new Map((manifest.tensors[vae.file] ?? []).map((e) => [e.name, e]));
  const weights = vaeWeights((name) => {
    const e = entries.get(name);
    if (!e) throw new ModelFormatError(`model ${manifest.id}: ${vae.file} has no tensor ${name}`);
    if (e.dtype !== "FLOAT" || e.offset % 4 !== 0 || e.offset + e.length > bytes.byteLength) {
      throw new ModelFormatError(`model ${manifest.id}: tensor ${name} of ${vae.file} is not float32 data inside the file`);
    }
    return { dims: e.dims, data: new Float32Array(bytes.buffer, bytes.byteOffset + e.offset, e.length / 4) };
  }, "packed");
  if (weights.codes !== vae.codes || weights.dim !== vae.dim || VAE_MASK_SIZE !== vae.maskSize) {
    throw new ModelFormatError(`model ${manifest.id}: the VQ-VAE tensors ([${weights.codes}, ${weights.dim}]) disagree with manifest.vae`);
  }
  return maskDecoder(weights);
}
