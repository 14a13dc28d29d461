/**
 * PaliGemma's tokenizer: a thin wrapper over `@huggingface/tokenizers` that fixes the settings PaliGemma needs.
 *
 * - `encode` never adds bos/eos (PaliGemmaProcessor builds the prompt layout itself; see prompt.ts).
 * - `decode` skips special tokens (`<pad>`, `<eos>`, `<bos>`, `<unk>`, `<image>`) but keeps `<locDDDD>` and
 *   `<segDDD>`, which are added, non-special tokens (docs/model-notes.md, "Tokens"; stripping them breaks detection).
 * - `decode` never applies the BERT-era `clean_up_tokenization_spaces` rewrite (" ," → ","): Gemma's
 *   tokenizer_config.json sets it false, but the library defaults it to true when the config omits it.
 *
 * Runs in workerd: the tokenizer files are passed in as parsed JSON, nothing is read from disk here.
 */
import { Tokenizer } from "@huggingface/tokenizers";
import { ModelFormatError } from "../errors.ts";

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A PaliGemma (Gemma SentencePiece-style BPE) tokenizer loaded from `tokenizer.json`. */
export class PaliGemmaTokenizer {
  private readonly specials: readonly number[];
  private readonly specialStrings: readonly string[];

  private constructor(
    private readonly inner: Tokenizer,
    private readonly vocabSize: number,
  ) {
    const specials: [number, string][] = [];
    for (const [id, token] of inner.get_added_tokens_decoder()) if (token.special) specials.push([id, token.content]);
    specials.sort((a, b) => a[0] - b[0]);
    this.specials = Object.freeze(specials.map(([id]) => id));
    this.specialStrings = Object.freeze(specials.map(([, content]) => content));
  }

  /**
   * Builds a tokenizer from the parsed `tokenizer.json` and (optionally) `tokenizer_config.json`.
   * Throws ModelFormatError when the files are not objects of the expected shape.
   */
  static fromJson(tokenizerJson: unknown, tokenizerConfig?: unknown): PaliGemmaTokenizer {
    if (!isObject(tokenizerJson) || !isObject(tokenizerJson.model) || !Array.isArray(tokenizerJson.added_tokens)) {
      throw new ModelFormatError("tokenizer.json: expected an object with `model` and `added_tokens`");
    }
    if (tokenizerConfig !== undefined && !isObject(tokenizerConfig)) {
      throw new ModelFormatError("tokenizer_config.json: expected an object");
    }
    let inner: Tokenizer;
    try {
      inner = new Tokenizer(tokenizerJson, tokenizerConfig ?? {});
    } catch (err) {
      throw new ModelFormatError(`tokenizer.json: ${err instanceof Error ? err.message : String(err)}`);
    }
    const vocab = inner.model?.vocab;
    if (!vocab || vocab.length === 0) throw new ModelFormatError("tokenizer.json: empty vocabulary");
    return new PaliGemmaTokenizer(inner, vocab.length);
  }

  /**
   * Number of token ids this tokenizer knows (max id + 1; 1588 for paligemma-shapes). Embedding rows at or
   * above this (HF pads the table to a multiple of 64) are never valid outputs.
   */
  get size(): number {
    return this.vocabSize;
  }

  /** Ids of the special added tokens (pad, eos, bos, unk, image, …), ascending. `decode` drops these. */
  get specialIds(): readonly number[] {
    return this.specials;
  }

  /** The text of each special added token (`<pad>`, `<eos>`, `<bos>`, `<unk>`, `<image>`, …), in id order. */
  get specialTokens(): readonly string[] {
    return this.specialStrings;
  }

  /** Encodes text to ids with no automatic bos/eos. Literal special-token strings (e.g. "<image>") map to their ids. */
  encode(text: string): number[] {
    return this.inner.encode(text, { add_special_tokens: false }).ids;
  }

  /**
   * Decodes ids to text, skipping special tokens and keeping `<loc>`/`<seg>` tokens.
   * Throws RangeError for an id that is not an integer in [0, size).
   */
  decode(ids: readonly number[]): string {
    if (ids.length === 0) return ""; // the library throws on an empty array
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new RangeError(`token id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
      }
    }
    return this.inner.decode(ids.slice(), { skip_special_tokens: true, clean_up_tokenization_spaces: false });
  }

  /** The id of a token string (e.g. "<image>", "<loc0123>", "▁circle"), or undefined when it is not in the vocabulary. */
  idOf(token: string): number | undefined {
    return this.inner.token_to_id(token);
  }

  /** The token string of an id, or undefined when the id is not in the vocabulary. */
  tokenOf(id: number): string | undefined {
    return this.inner.id_to_token(id);
  }
}
