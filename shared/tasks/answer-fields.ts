/**
 * The structured part of a native generate result (the `done` event and the non-streaming body):
 *
 *   {"text": "<loc0512><loc0096><loc0874><loc0437> circle", …,
 *    "detections": [{"label": "circle", "box": {"x1": 9, "y1": 48, "x2": 40.97, "y2": 81.94},
 *                    "box_normalized": {"x1": 0.09375, …}}],
 *    "segments": [],
 *    "dropped": 0}
 *
 * The fields are present whenever the answer holds a `<loc>` token, and also for an empty or box-less answer
 * to a detect/segment prefix (so "nothing found" is `"detections": []`, not a missing field), whether the
 * request used `task` or a free prompt. Other answers get no extra fields. The OpenAI-compatible API returns
 * the raw text only.
 */
import { hasLocTokens, parseLocAnswer, type Detection, type ImageSize, type Segment, type SegmentMask } from "./loc-answer.ts";
import { prefixTask } from "./request.ts";

/** What a native result carries besides the raw text when the answer has boxes. */
export interface LocAnswerFields {
  /** Objects without seg codes, boxes in the original image's pixels. */
  readonly detections: Detection[];
  /** Objects with 16 seg codes: box, codes and `mask` (COCO RLE), or `mask: null` with `mask_reason`. */
  readonly segments: Segment[];
  /** How many objects were malformed or had an empty/inverted box and were left out. */
  readonly dropped: number;
}

/**
 * The structured fields for an answer, or null when it is not a box answer.
 * @param text the generated text with `<loc>`/`<seg>` tokens kept
 * @param size the original image's size (the boxes are scaled to it)
 * @param prefix the request's prefix (a task's, or the free prompt)
 * @param masks the decoded masks of the answer's segments, in order (the session's; absent: none decoded)
 */
export function answerFields(text: string, size: ImageSize, prefix: string, masks?: readonly SegmentMask[]): LocAnswerFields | null {
  const task = prefixTask(prefix);
  if (!hasLocTokens(text) && task !== "detect" && task !== "segment") return null;
  const parsed = parseLocAnswer(text, size);
  if (masks !== undefined && masks.length !== parsed.segments.length) {
    throw new Error(`${masks.length} masks for ${parsed.segments.length} segments`);
  }
  const segments = masks === undefined ? parsed.segments : parsed.segments.map(({ mask_reason: _, ...s }, i) => ({ ...s, mask: masks[i] }));
  return { detections: parsed.detections, segments, dropped: parsed.dropped.length };
}
