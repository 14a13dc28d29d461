/**
 * Control tokens in user text. PaliGemmaProcessor builds `"<image>"×N + "<bos>" + prefix + "\n"` and tokenizes
 * the whole string with special-token parsing on, so a prefix that contains the text `<eos>` gets the real eos
 * id and changes the answer (docs/model-notes.md, "Prompt"). Our policy:
 *
 * - The tokenizer's special tokens (`special: true` in tokenizer.json: `<pad>`, `<eos>`, `<bos>`, `<unk>`,
 *   `<image>`, and whatever else a checkpoint marks special) are refused with a 422 naming the token and the
 *   request field it came from. No PaliGemma prompt needs one: the server adds `<image>`, `<bos>` and "\n".
 *   Refusing keeps the answer equal to the reference's for every accepted prompt, which encoding the text with
 *   parsing off would not (transformers would still read them as control tokens).
 * - Added tokens that are not special (`<locDDDD>`, `<segDDD>`) are kept and encoded as their ids, as
 *   transformers does: they are the model's own vocabulary for boxes and masks, and a prompt may quote a region.
 */
import { echo, InputError } from "../errors.ts";

/** Where a piece of the prefix came from in the request, as [start, end) UTF-16 offsets into the prefix. */
export interface PromptSpan {
  /** The request field, as `param` names it: `prompt`, `question`, `messages[0].content[1].text`. */
  readonly param: string;
  readonly start: number;
  readonly end: number;
}

/** The first control token in `text` (earliest; the longest one on ties), or null. */
export function findControlToken(text: string, tokens: readonly string[]): { token: string; index: number } | null {
  let best: { token: string; index: number } | null = null;
  for (const token of tokens) {
    if (token.length === 0) continue;
    const index = text.indexOf(token);
    if (index < 0) continue;
    if (best === null || index < best.index || (index === best.index && token.length > best.token.length)) best = { token, index };
  }
  return best;
}

/** The span holding offset `index`, else the first span; without spans, one named `fallback` over everything. */
function spanAt(spans: readonly PromptSpan[], index: number, fallback: string): PromptSpan {
  return spans.find((s) => index >= s.start && index < s.end) ?? spans[0] ?? { param: fallback, start: 0, end: Infinity };
}

/** The refusal of control token `token` found at offset `index` of the prefix. */
export function controlTokenError(token: string, index: number, spans: readonly PromptSpan[], fallback = "prompt"): InputError {
  const span = spanAt(spans, index, fallback);
  const at = index >= span.start && index < span.end ? ` at character ${index - span.start}` : "";
  return new InputError(
    "unprocessable",
    `${span.param} contains the control token ${echo(token)}${at}; prompts are plain text (the server adds <image>, <bos> and the final newline itself; <loc>/<seg> tokens are allowed)`,
    span.param,
  );
}

/** Throws {@link controlTokenError} for the first of `tokens` that occurs in `prefix`. */
export function assertNoControlTokens(prefix: string, tokens: readonly string[], spans: readonly PromptSpan[] = []): void {
  const found = findControlToken(prefix, tokens);
  if (found) throw controlTokenError(found.token, found.index, spans);
}
