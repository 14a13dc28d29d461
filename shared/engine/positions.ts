/**
 * Rotary tables and additive attention masks, computed on the host once per call and fed to the decoder
 * graphs. Positions are 1-based as in transformers (`position_ids = cache_position + 1`).
 */
import { isSlidingLayer, type TextConfig } from "../model/config.ts";

/** torch.finfo(torch.float32).min: transformers adds it (not -inf) to hidden scores. */
export const MASKED = -3.4028234663852886e38;

/**
 * cos/sin `float32[L, headDim]` for positions `first .. first+L-1`, in transformers' float32 arithmetic:
 * inv_freq = 1 / theta^(2i/d), angle = inv_freq · pos (one float32 product), emb = [angles, angles].
 */
export function ropeTables(text: TextConfig, first: number, length: number): { cos: Float32Array; sin: Float32Array } {
  const d = text.headDim;
  const half = d / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = Math.fround(1 / Math.fround(Math.pow(text.ropeTheta, Math.fround((2 * i) / d))));
  const cos = new Float32Array(length * d);
  const sin = new Float32Array(length * d);
  for (let r = 0; r < length; r++) {
    const pos = first + r;
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(inv[i] * pos);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[r * d + i] = cos[r * d + half + i] = c;
      sin[r * d + i] = sin[r * d + half + i] = s;
    }
  }
  return { cos, sin };
}

/**
 * Masks for `length` new tokens at cache indices past..past+length-1 over keys 0..past+length-1.
 * The new tokens are one block of the prefix-LM: they see every earlier token and each other
 * (bidirectional); a single decode step is the causal case of the same rule. Sliding layers (Gemma 2)
 * also hide key j from query i when j <= i - window: the window limits only the past.
 */
export function attentionMasks(text: TextConfig, past: number, length: number): { global: Float32Array; sliding: Float32Array | null } {
  const total = past + length;
  const global = new Float32Array(length * total);
  const anySliding = Array.from({ length: text.layers }, (_, i) => isSlidingLayer(text, i)).some(Boolean);
  if (!anySliding || text.slidingWindow === null) return { global, sliding: null };
  const window = text.slidingWindow;
  const sliding = new Float32Array(length * total);
  for (let r = 0; r < length; r++) {
    const i = past + r;
    for (let j = 0; j <= i - window; j++) sliding[r * total + j] = MASKED;
  }
  return { global, sliding };
}
