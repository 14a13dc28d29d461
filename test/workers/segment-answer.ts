/** The scripted segmentation answer of the workerd mask tests: two objects with the VQ-VAE golden's codes 0 and 2. */
import type { PaliGemmaTokenizer } from "../../shared/text/tokenizer.ts";
import { segmentAnswerIds, type ScriptedObject } from "../serving/support/segment-answer.ts";

/** Golden case 0 and case 2 codes (../shared/golden-vqvae/codes.json), copied so the entry needs no file access. */
const CASE0 = [120, 61, 60, 56, 37, 63, 36, 96, 65, 124, 127, 0, 71, 98, 25, 24];
const CASE2 = [0, 109, 109, 109, 0, 109, 109, 109, 0, 109, 109, 109, 0, 0, 0, 0];

export const SEGMENT_ANSWER = Object.freeze({
  objects: [
    { locs: [102, 61, 901, 990], codes: CASE0, label: "circle" },
    { locs: [340, 512, 520, 610], codes: CASE2, label: "triangle" },
  ] as ScriptedObject[],
  /** Golden case index of each object. */
  cases: [0, 2],
  ids(tokenizer: PaliGemmaTokenizer): number[] {
    return segmentAnswerIds(tokenizer, this.objects);
  },
});
