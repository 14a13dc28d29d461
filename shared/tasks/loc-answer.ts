/**
 * Parsing PaliGemma's detection and segmentation answers (docs/model-notes.md, "Detection and
 * segmentation answers"). The grammar, after trimming the answer:
 *
 *   answer  := "" | object (";" object)*              objects are joined by " ; "; spaces around ";" are free
 *   object  := loc loc loc loc seg{16}? label          no text before the first loc
 *   loc     := "<loc" DDDD ">"  with DDDD in 0000..1023, in the order y1 x1 y2 x2
 *   seg     := "<seg" DDD ">"   with DDD in 000..127 (a VQ-VAE codebook index)
 *   label   := optional spaces, then non-empty text without "<", ">" or ";"
 *
 * An object that breaks the grammar (3 locs, 7 segs, no label, a stray token in the label, text before the
 * box) or whose box is empty or inverted (y2 <= y1 or x2 <= x1, the check big_vision's evaluator makes) is
 * dropped and reported with a reason; the other objects are kept.
 *
 * Coordinates follow Google's demo and the default shapes model (same section): a bin b stands for v = b / 1024 of the
 * **original** image's width or height (not big_vision's evaluator, which divides by 1023). So a box is
 * `x = loc / 1024 × width`, `y = loc / 1024 × height`, with x2/y2 the exclusive right/bottom edge.
 */

/** Loc bins per axis: `<loc0000>` … `<loc1023>`; a bin b stands for b / LOC_BINS of the side. */
export const LOC_BINS = 1024;
/** Seg tokens per segmentation object (a 4×4 grid of VQ-VAE codes). */
export const SEG_CODES_PER_OBJECT = 16;
/** Size of the VQ-VAE codebook: `<seg000>` … `<seg127>`. */
export const SEG_CODEBOOK_SIZE = 128;

/** Why a mask is not decoded: what the API says beside `"mask": null` when the model has no VQ-VAE decoder. */
export const MASK_UNAVAILABLE =
  "this model has no VQ-VAE mask decoder configured (convert big_vision's vae-oid.npz into its folder with " +
  "`npm run -s cli -- convert-vae`); the 16 codes are returned so a client can decode them";

/** An image size in pixels (the original image, before the model's resize). */
export interface ImageSize {
  readonly width: number;
  readonly height: number;
}

/** An axis-aligned box: x1, y1 top-left, x2, y2 the exclusive bottom-right edge. */
export interface Box {
  readonly x1: number;
  readonly y1: number;
  readonly x2: number;
  readonly y2: number;
}

/** One detected object, as the API returns it. */
export interface Detection {
  readonly label: string;
  /** In the original image's pixels: loc / 1024 × width (x) or height (y). */
  readonly box: Box;
  /** In [0, 1): loc / 1024. */
  readonly box_normalized: Box;
}

/**
 * A binary mask over the whole original image as COCO compressed RLE (pycocotools' `{"size": [h, w],
 * "counts": "..."}`; shared/masks/coco-rle.ts).
 */
export interface SegmentMask {
  readonly size: readonly [number, number];
  readonly counts: string;
}

/** One segmented object: its box plus the 16 codebook indices of its mask, and the mask when decoded. */
export interface Segment extends Detection {
  /** The 16 `<segNNN>` values in token order (row-major 4×4 grid). */
  readonly codes: readonly number[];
  /** The decoded mask (shared/masks/placement.ts), or null when the model has no VQ-VAE decoder. */
  readonly mask: SegmentMask | null;
  /** Why `mask` is null (absent when it is not). */
  readonly mask_reason?: string;
}

/** An object that was not kept, with the reason. */
export interface DroppedObject {
  readonly text: string;
  readonly reason: string;
}

/** A parsed answer: objects without seg codes are detections, objects with 16 are segments. */
export interface LocAnswer {
  readonly detections: Detection[];
  readonly segments: Segment[];
  readonly dropped: DroppedObject[];
}

const LOC_TOKEN = /^<loc(\d{4})>/;
const SEG_TOKEN = /^<seg(\d{3})>/;
const ANY_LOC_OR_SEG = /<(?:loc|seg)\d+>/;

/** Whether a text contains at least one `<locDDDD>` token. */
export function hasLocTokens(text: string): boolean {
  return /<loc\d{4}>/.test(text);
}

/** Reads as many tokens matching `pattern` as there are at the start of `rest`. */
function readTokens(rest: string, pattern: RegExp): { values: number[]; rest: string } {
  const values: number[] = [];
  for (let m = pattern.exec(rest); m !== null; m = pattern.exec(rest)) {
    values.push(Number(m[1]));
    rest = rest.slice(m[0].length);
  }
  return { values, rest };
}

type ParsedObject =
  | { readonly ok: true; readonly label: string; readonly locs: readonly number[]; readonly codes: readonly number[] }
  | { readonly ok: false; readonly reason: string };

/** Parses one object (already split on ";" and trimmed) against the grammar. */
function parseObject(text: string): ParsedObject {
  const fail = (reason: string): ParsedObject => ({ ok: false, reason });
  if (text.length === 0) return fail("empty object");
  if (!text.startsWith("<loc")) return fail("text before the box");
  const locs = readTokens(text, LOC_TOKEN);
  if (locs.values.length !== 4) return fail(`expected 4 loc tokens, got ${locs.values.length}`);
  if (locs.values.some((v) => v >= LOC_BINS)) return fail(`loc value out of range 0..${LOC_BINS - 1}`);
  const segs = readTokens(locs.rest, SEG_TOKEN);
  const n = segs.values.length;
  if (n !== 0 && n !== SEG_CODES_PER_OBJECT) return fail(`expected 0 or ${SEG_CODES_PER_OBJECT} seg tokens, got ${n}`);
  if (segs.values.some((v) => v >= SEG_CODEBOOK_SIZE)) return fail(`seg value out of range 0..${SEG_CODEBOOK_SIZE - 1}`);
  const label = segs.rest.trim();
  if (ANY_LOC_OR_SEG.test(label)) return fail("loc/seg token inside the label");
  if (/[<>]/.test(label)) return fail('"<" or ">" in the label');
  if (label.length === 0) return fail("missing label");
  const [y1, x1, y2, x2] = locs.values;
  if (y2 <= y1 || x2 <= x1) return fail("empty or inverted box");
  return { ok: true, label, locs: locs.values, codes: segs.values };
}

/** The normalized and pixel boxes of loc bins `[y1, x1, y2, x2]`. */
export function locBox(locs: readonly number[], size: ImageSize): { box: Box; box_normalized: Box } {
  const [y1, x1, y2, x2] = locs.map((b) => b / LOC_BINS);
  return {
    box: { x1: x1 * size.width, y1: y1 * size.height, x2: x2 * size.width, y2: y2 * size.height },
    box_normalized: { x1, y1, x2, y2 },
  };
}

/**
 * Parses a detection/segmentation answer into boxes in the original image's pixels.
 * @param text the generated text, decoded with `<loc>`/`<seg>` tokens kept
 * @param size the original image's width and height (positive integers)
 */
export function parseLocAnswer(text: string, size: ImageSize): LocAnswer {
  if (!(Number.isInteger(size.width) && size.width > 0 && Number.isInteger(size.height) && size.height > 0)) {
    throw new RangeError(`image size must be positive integers, got ${size.width}x${size.height}`);
  }
  const result: LocAnswer = { detections: [], segments: [], dropped: [] };
  const trimmed = text.trim();
  if (trimmed.length === 0) return result;
  for (const raw of trimmed.split(";")) {
    const piece = raw.trim();
    const parsed = parseObject(piece);
    if (!parsed.ok) {
      result.dropped.push({ text: piece, reason: parsed.reason });
      continue;
    }
    const detection = { label: parsed.label, ...locBox(parsed.locs, size) };
    if (parsed.codes.length === 0) result.detections.push(detection);
    else result.segments.push({ ...detection, codes: parsed.codes, mask: null, mask_reason: MASK_UNAVAILABLE });
  }
  return result;
}
