/**
 * The PaliGemma prompt layout (inference), as PaliGemmaProcessor builds it (docs/model-notes.md, "Prompt"):
 *
 *   [<image>] × imageTokens, <bos>, encode(prefix + "\n")
 *
 * e.g. paligemma-shapes, prefix "caption en", 36 image tokens: [1587]*36 + [2, 427, 400, 261].
 * The image always comes first; the tokenizer adds no bos/eos of its own. The prefix may not contain control
 * tokens (control-tokens.ts has the policy and why).
 */
import type { SpecialTokens } from "../model/config.ts";
import { assertNoControlTokens, controlTokenError, type PromptSpan } from "./control-tokens.ts";
import type { PaliGemmaTokenizer } from "./tokenizer.ts";

export type { PromptSpan } from "./control-tokens.ts";

/**
 * Builds the prompt ids: `imageTokens` image placeholders, bos, then the prefix and a newline.
 * The prefix may contain newlines. Throws InputError("unprocessable", …, param) when the prefix contains one of
 * the tokenizer's special tokens (`<image>`, `<bos>`, `<eos>`, `<pad>`, …), with `param` the request field of
 * `spans` it lies in ("prompt" without spans): the image slots must match the soft tokens, and user text must
 * not end or restart the sequence. `<loc>`/`<seg>` tokens are encoded as their ids.
 */
export function buildPromptIds(
  tok: PaliGemmaTokenizer,
  prefix: string,
  imageTokens: number,
  special: SpecialTokens,
  spans: readonly PromptSpan[] = [],
): number[] {
  if (!Number.isSafeInteger(imageTokens) || imageTokens < 0) {
    throw new RangeError(`imageTokens must be a non-negative integer, got ${imageTokens}`);
  }
  const image = tok.tokenOf(special.image);
  assertNoControlTokens(prefix, image === undefined ? tok.specialTokens : [...tok.specialTokens, image], spans);
  const text = tok.encode(prefix + "\n");
  // The tokenizer is the authority: any special id that still came out (a token matched after normalisation)
  // is refused too. <unk> is left out: without byte fallback it stands for unknown characters, not control.
  const unk = tok.idOf("<unk>");
  const leaked = text.find((id) => (id === special.image || tok.specialIds.includes(id)) && id !== unk);
  if (leaked !== undefined) throw controlTokenError(tok.tokenOf(leaked) ?? `id ${leaked}`, -1, spans);
  const ids = new Array<number>(imageTokens + 1 + text.length);
  ids.fill(special.image, 0, imageTokens);
  ids[imageTokens] = special.bos;
  for (let i = 0; i < text.length; i++) ids[imageTokens + 1 + i] = text[i];
  return ids;
}
