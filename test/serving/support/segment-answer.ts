/**
 * Scripted segmentation answers for fake engines: PaliGemma's `<locY1><locX1><locY2><locX2><seg…>×16 label`
 * objects joined by " ; ", as the shapes tokenizer's ids (loc and seg tokens are single added tokens), + eos.
 * The codes are the VQ-VAE golden's, so the masks they decode to are known (../shared/golden-vqvae).
 */
import type { PaliGemmaTokenizer } from "../../../shared/text/tokenizer.ts";

/** One object of a scripted answer. */
export interface ScriptedObject {
  readonly locs: readonly [number, number, number, number]; // y1, x1, y2, x2 bins
  readonly codes?: readonly number[]; // 16 for a segment, none for a detection
  readonly label: string;
}

const pad = (v: number, n: number) => String(v).padStart(n, "0");

/** The answer text. */
export function segmentAnswerText(objects: readonly ScriptedObject[]): string {
  return objects
    .map((o) => o.locs.map((v) => `<loc${pad(v, 4)}>`).join("") + (o.codes ?? []).map((v) => `<seg${pad(v, 3)}>`).join("") + ` ${o.label}`)
    .join(" ; ");
}

/** The answer's ids with eos (1 in the shapes tokenizer). */
export function segmentAnswerIds(tokenizer: PaliGemmaTokenizer, objects: readonly ScriptedObject[], eos = 1): number[] {
  return [...tokenizer.encode(segmentAnswerText(objects)), eos];
}
