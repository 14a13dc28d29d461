/**
 * The decoder's input rows for a prompt: image rows from the soft tokens, text rows embed(id) · sqrt(H).
 * transformers divides the image features by sqrt(H) and the decoder multiplies every input row by it again;
 * that float32 round trip is reproduced (docs/model-notes.md, "Soft tokens").
 */
import { InputError } from "../errors.ts";
import type { ModelConfig } from "../model/config.ts";
import type { SoftTokens } from "./types.ts";

/** Writes embed(id) · sqrt(H) of token `id` into `out` f32[H]. */
export type Embedder = (id: number, out: Float32Array) => void;

/** f32[ids.length, H]: the prompt's decoder input rows. @throws InputError for a mismatched prompt. */
export function promptRows(config: ModelConfig, soft: SoftTokens, ids: readonly number[], embed: Embedder): Float32Array {
  const { text, tokens } = config;
  const h = text.hidden;
  if (soft.dim !== h) throw new InputError("invalid_request", `soft tokens have width ${soft.dim}, the model needs ${h}`);
  const imageRows = ids.filter((id) => id === tokens.image).length;
  if (imageRows !== soft.tokens) {
    throw new InputError("invalid_request", `the prompt has ${imageRows} image tokens but the image gives ${soft.tokens}`, "input_ids");
  }
  const out = new Float32Array(ids.length * h);
  const s = Math.fround(Math.sqrt(h));
  let k = 0;
  for (let r = 0; r < ids.length; r++) {
    const row = out.subarray(r * h, (r + 1) * h);
    if (ids[r] === tokens.image) {
      const src = soft.data.subarray(k * h, ++k * h);
      for (let i = 0; i < h; i++) row[i] = Math.fround(Math.fround(src[i] / s) * s);
    } else {
      if (!Number.isInteger(ids[r]) || ids[r] < 0 || ids[r] >= text.vocab) {
        throw new InputError("invalid_request", `token id ${ids[r]} is outside the vocabulary [0, ${text.vocab})`, "input_ids");
      }
      embed(ids[r], row);
    }
  }
  return out;
}
