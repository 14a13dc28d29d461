/**
 * Segmentation masks: big_vision's VQ-VAE decoder (16 `<seg>` codes → float32[64, 64]), its weights read from
 * `vae-oid.npz` ({@link readNpz}) or from a converted model ({@link loadMaskDecoder}), the mask placed in its
 * box in the original image ({@link placeMask}, the demo's convention) and encoded as COCO RLE.
 */
export { readNpz } from "./npz.ts";
export { parseNpy, type NpyArray } from "./npy.ts";
export { packedTensors, vaeNpzKeys, vaeWeights, VAE_KEYS, VAE_MASK_SIZE, type VaeWeights } from "./vae-weights.ts";
export { decodeMask, VAE_CODES_PER_MASK } from "./vae-decoder.ts";
export { demoPixelBox, maskToUint8, MASK_THRESHOLD_U8, placeMask, resizeIntoBox, type NormalizedBox, type PixelSize } from "./placement.ts";
export { decodeCocoRle, encodeCocoRle, type CocoRle } from "./coco-rle.ts";
export { loadMaskDecoder, maskDecoder, type MaskDecoder } from "./loader.ts";

import { readNpz } from "./npz.ts";
import { vaeNpzKeys, vaeWeights, type VaeWeights } from "./vae-weights.ts";

/** The decoder's weights from the bytes of a `vae-oid.npz` (PyTorch layouts, repacked). */
export async function vaeFromNpz(bytes: Uint8Array, what: string): Promise<VaeWeights> {
  const arrays = await readNpz(bytes, vaeNpzKeys(), what);
  return vaeWeights((k) => arrays.get(k)!, "torch");
}
