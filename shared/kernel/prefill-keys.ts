/**
 * Pass 1 of a prefill layer's attention, around {@link Prefill.qkv}: the rows' keys and values written into the
 * session's cache, and the cache's keys and values packed for the score and context GEMMs of pass 2. The
 * sequence-parallel prefill (prefill-spread.ts) writes keys other isolates computed the same way.
 */
import type { TextConfig } from "../model/config.ts";
import type { KvSequence } from "./cache.ts";
import type { LayerSlice } from "./decoder-weights.ts";
import type { KernelAdapter } from "./lora.ts";
import type { Kernel } from "./module.ts";
import type { Prefill } from "./prefill.ts";

/** A layer's queries (every row, in the "q" scratch) and the cache's keys and values packed for the GEMMs. */
export interface PackedKeys {
  readonly q: number;
  readonly kPack: number;
  readonly vPack: number;
  readonly t8: number;
  readonly hd8: number;
}

/** Copies rows f32[n, kvHeads·hd] at `src` (kernel address) into slot `slot`'s `table` at positions from `pos`. */
export function writeRows(kernel: Kernel, text: TextConfig, seq: KvSequence, table: "keys" | "values", slot: number, pos: number, src: number, n: number): void {
  const { kvHeads, headDim: hd } = text;
  const mem = new Float32Array(kernel.heap.memory.buffer);
  for (let r = 0; r < n; r++) {
    for (let g = 0; g < kvHeads; g++) {
      const from = src / 4 + (r * kvHeads + g) * hd;
      mem.copyWithin(seq.at(table, slot, g, pos + r) / 4, from, from + hd);
    }
  }
}

/** The rows' queries, keys and values; keys and values into the cache at `past`; then the cache packed. */
export function keysIntoCache(p: Prefill, kernel: Kernel, text: TextConfig, w: LayerSlice, seq: KvSequence, x: number, cos: number, sin: number, past: number, rows: number, lora: KernelAdapter | null): PackedKeys {
  const slot = seq.slot(w.index);
  p.qkv(w, x, cos, sin, rows, lora, (kb, vb, r0, n) => {
    writeRows(kernel, text, seq, "keys", slot, past + r0, kb, n);
    writeRows(kernel, text, seq, "values", slot, past + r0, vb, n);
  });
  return packKeys(p, kernel, text, w, seq, past + rows);
}

/** The cache's first `total` keys as B = Kᵀ [hd, T] and values as B = V [T, hd], per kv head, in gemm's panel layout. */
export function packKeys(p: Prefill, kernel: Kernel, text: TextConfig, w: LayerSlice, seq: KvSequence, total: number): PackedKeys {
  const { kvHeads, headDim: hd } = text;
  const ex = kernel.exports;
  const slot = seq.slot(w.index);
  const t8 = Math.ceil(total / 8) * 8;
  const hd8 = Math.ceil(hd / 8) * 8;
  const kPack = p.scratch("kpack", 4 * kvHeads * hd * t8);
  const vPack = p.scratch("vpack", 4 * kvHeads * total * hd8);
  for (let g = 0; g < kvHeads; g++) {
    ex.packB(kPack + 4 * g * hd * t8, seq.at("keys", slot, g, 0), 1, hd, hd, total);
    ex.packB(vPack + 4 * g * total * hd8, seq.at("values", slot, g, 0), hd, 1, total, hd);
  }
  return { q: p.scratch("q"), kPack, vPack, t8, hd8 };
}
