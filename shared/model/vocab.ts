/** Which ids a model may ever generate: not the embedding's padding rows, not `<image>`. */
import type { VocabMask } from "../generation/sampler.ts";
import type { Manifest } from "./manifest.ts";

export function vocabMask(m: Pick<Manifest, "config" | "tokenizer">): VocabMask {
  const validTokens = Math.min(m.tokenizer?.size ?? m.config.text.vocab, m.config.text.vocab);
  return { validTokens, banned: m.config.tokens.image < validTokens ? [m.config.tokens.image] : [] };
}
