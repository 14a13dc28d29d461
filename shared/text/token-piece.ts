/**
 * One token's own text and bytes, for alternatives in `top_logprobs` (which are not part of the answer, so they
 * cannot be read off the streamed text). Gemma's pieces: a byte-fallback piece `<0xNN>` is exactly the byte NN
 * (text: the character when NN is ASCII, else U+FFFD, as vLLM shows partial UTF-8); a special token shows under
 * its own name (`<eos>`); any other piece is what it decodes to alone ("▁green" → " green").
 */
import type { PaliGemmaTokenizer } from "./tokenizer.ts";

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;
const utf8 = new TextEncoder();

/** The text and UTF-8 bytes of token `id` on its own. */
export function tokenPiece(tok: PaliGemmaTokenizer, id: number): { text: string; bytes: number[] } {
  const piece = tok.tokenOf(id) ?? "";
  const byte = BYTE_PIECE.exec(piece);
  if (byte) {
    const value = Number.parseInt(byte[1], 16);
    return { text: value < 0x80 ? String.fromCharCode(value) : "\uFFFD", bytes: [value] };
  }
  const text = tok.specialIds.includes(id) ? piece : tok.decode([id]);
  return { text, bytes: Array.from(utf8.encode(text)) };
}
