/**
 * Streaming detokenization: turns generated ids into text deltas as they arrive.
 *
 * Decoding token by token is wrong for byte-fallback pieces (an emoji is four `<0xNN>` tokens; each alone
 * decodes to U+FFFD), so we keep two offsets into the id list (the prefix-offset technique):
 *
 *   ids:  … | prefixOffset … readOffset | readOffset … end |
 *              already emitted (context)   not yet emitted
 *
 * Each push decodes only the window [prefixOffset, end) and the context [prefixOffset, readOffset); the delta
 * is the window's text past the context's text. When the window's text ends in U+FFFD (an incomplete UTF-8
 * sequence, or an invalid one we cannot yet tell apart) nothing is emitted and the offsets stay put.
 * After an emission the context becomes the ids just emitted, so each step costs O(window), not O(sequence).
 *
 * This is exact for Gemma's decoder (Replace "▁"→" ", ByteFallback, Fuse): decoding is concatenative at any
 * boundary where the text so far does not end in U+FFFD, so the deltas join to exactly `tok.decode(allIds)`.
 */
import type { PaliGemmaTokenizer } from "./tokenizer.ts";

const REPLACEMENT_CHAR = "\uFFFD";

/** Emits the text of a growing id sequence incrementally; the deltas concatenate to `tok.decode(ids)`. */
export class IncrementalDetokenizer {
  private readonly ids: number[] = [];
  private prefixOffset = 0; // start of the decoded window (context for the next delta)
  private readOffset = 0; // ids before this have had their text emitted
  private emitted = "";
  private finished = false;

  /** @param tok the tokenizer whose `decode` defines the text */
  constructor(private readonly tok: PaliGemmaTokenizer) {}

  /**
   * Adds one generated id and returns the new text it completes: possibly "" (a special token, or a
   * byte-fallback UTF-8 sequence still incomplete), possibly more than one token's text.
   */
  push(id: number): string {
    if (this.finished) throw new Error("IncrementalDetokenizer: push() after flush()");
    this.ids.push(id);
    const windowText = this.decodeRange(this.prefixOffset, this.ids.length);
    if (windowText.endsWith(REPLACEMENT_CHAR)) return "";
    return this.advance(windowText);
  }

  /** Ends the stream and returns any held-back text (e.g. a trailing incomplete byte sequence as U+FFFD). */
  flush(): string {
    if (this.finished) return "";
    this.finished = true;
    if (this.readOffset === this.ids.length) return "";
    return this.advance(this.decodeRange(this.prefixOffset, this.ids.length));
  }

  /** The text emitted so far (the concatenation of all returned deltas). */
  get text(): string {
    return this.emitted;
  }

  /** Number of ids pushed so far. */
  get length(): number {
    return this.ids.length;
  }

  private advance(windowText: string): string {
    const contextText = this.decodeRange(this.prefixOffset, this.readOffset);
    const delta = windowText.slice(contextText.length);
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    this.emitted += delta;
    return delta;
  }

  private decodeRange(start: number, end: number): string {
    return start >= end ? "" : this.tok.decode(this.ids.slice(start, end));
  }
}
