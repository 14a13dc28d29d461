/**
 * The head over prefill rows: final norm, this engine's slices of the tied embedding as one GEMM each, final
 * soft-cap → logits f32[rows, vocab] (the columns of slices not held stay 0). Runs on a {@link Prefill}'s
 * scratch and GEMMs.
 */
import type { ModelConfig } from "../model/config.ts";
import type { HeadSlice } from "./decoder-weights.ts";
import type { Kernel } from "./module.ts";
import type { Prefill } from "./prefill.ts";

/** Logits f32[rows, vocab] of hidden rows f32[rows, H] through `head`'s slices. */
export function headRows(p: Prefill, kernel: Kernel, config: ModelConfig, head: readonly HeadSlice[], hidden: Float32Array, rows: number): Float32Array {
  const t = config.text;
  const ex = kernel.exports;
  const heap = kernel.heap;
  const out = new Float32Array(rows * t.vocab);
  for (const slice of head) {
    const width = slice.to - slice.from;
    const x = p.scratch("hx", 4 * rows * t.hidden);
    const xb = p.scratch("hxb", 4 * rows * t.hidden);
    const logits = p.scratch("hlogits", 4 * rows * width);
    heap.f32(x, rows * t.hidden).set(hidden.subarray(0, rows * t.hidden));
    for (let r = 0; r < rows; r++) ex.rmsNorm(xb + 4 * r * t.hidden, x + 4 * r * t.hidden, slice.norm, t.hidden, t.rmsNormEps);
    p.mm(logits, width, xb, t.hidden, slice.table, 0, rows);
    if (t.finalLogitSoftcap !== null) ex.softcapInPlace(logits, rows * width, t.finalLogitSoftcap);
    const got = heap.f32(logits, rows * width);
    for (let r = 0; r < rows; r++) out.set(got.subarray(r * width, (r + 1) * width), r * t.vocab + slice.from);
  }
  return out;
}
