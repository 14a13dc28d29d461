/**
 * The PaliGemma prompt layout (inference), as PaliGemmaProcessor builds it (docs/paligemma.md, "Prompt"):
 *
 *   [<image>] × imageTokens, <bos>, encode(prefix + "\n")
 *
 * e.g. paligemma-shapes, prefix "caption en", 36 image tokens: [1587]*36 + [2, 427, 400, 261].
 * The image always comes first; the tokenizer adds no bos/eos of its own.
 */
import { InputError } from "../errors.ts";
import type { SpecialTokens } from "../model/config.ts";
import type { PaliGemmaTokenizer } from "./tokenizer.ts";

/**
 * Builds the prompt ids: `imageTokens` image placeholders, bos, then the prefix and a newline.
 * The prefix may contain newlines. Throws InputError("unprocessable", …, "prompt") when the prefix itself
 * encodes an `<image>` token (the literal text "<image>"): the image slots must match the soft tokens exactly.
 */
export function buildPromptIds(
  tok: PaliGemmaTokenizer,
  prefix: string,
  imageTokens: number,
  special: SpecialTokens,
): number[] {
  if (!Number.isSafeInteger(imageTokens) || imageTokens < 0) {
    throw new RangeError(`imageTokens must be a non-negative integer, got ${imageTokens}`);
  }
  const text = tok.encode(prefix + "\n");
  if (text.includes(special.image)) {
    throw new InputError(
      "unprocessable",
      "the prompt text must not contain the <image> token; the image is passed separately",
      "prompt",
    );
  }
  const ids = new Array<number>(imageTokens + 1 + text.length);
  ids.fill(special.image, 0, imageTokens);
  ids[imageTokens] = special.bos;
  for (let i = 0; i < text.length; i++) ids[imageTokens + 1 + i] = text[i];
  return ids;
}
