/**
 * Masks for a segmentation answer, computed in the session right after generation: the session holds the
 * original image's size (stored with the soft tokens) and the model, and the mask decoder's weights load
 * beside the model's, once per isolate. Each `<loc>×4 <seg>×16 label` object becomes a COCO RLE over the whole
 * image (shared/masks: VQ-VAE decode → demo placement → threshold → RLE).
 */
import type { MaskDecoder } from "../../shared/masks/loader.ts";
import { parseLocAnswer, type ImageSize, type SegmentMask } from "../../shared/tasks/loc-answer.ts";

/**
 * The masks of `text`'s segments in answer order, or undefined when there is nothing to decode: no segments,
 * no image size, or a model without a VQ-VAE decoder (`load` gives null; the API then keeps `mask: null`).
 * The decoder is loaded only when the answer has segments.
 */
export async function segmentMasks(
  text: string,
  size: ImageSize | null,
  load: (() => Promise<MaskDecoder | null>) | undefined,
): Promise<SegmentMask[] | undefined> {
  if (size === null || load === undefined) return undefined;
  const segments = parseLocAnswer(text, size).segments;
  if (segments.length === 0) return undefined;
  const decoder = await load();
  if (decoder === null) return undefined;
  return segments.map((s) => decoder.segmentMask(s.codes, s.box_normalized, size));
}
