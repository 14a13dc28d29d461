/**
 * Sequence-parallel prefill in the kernel engine: a chunk of prompt rows f32[n, H] at cache positions
 * [position, position + n) split into blocks, each block's layers run by whichever isolate holds it, the
 * isolates exchanging each layer's keys and values in between (through their coordinator). Per layer, two
 * passes of {@link Prefill}, the same code a whole-chunk prefill runs:
 *
 *   keys(block)            norm, q/k/v, RoPE of the block's rows → its keys and values f32[m, kvHeads·hd]
 *                          (its queries kept with the block)
 *   attend(block, all kv)  the chunk's keys and values into the cache at [position, position + n), then for the
 *                          block's rows softmax(q·Kᵀ)·V over every cache position (the prefix-LM mask: the chunk
 *                          is bidirectional, Gemma 2's sliding window, the soft-caps, as the single path), o, the
 *                          MLP and the residuals
 *
 * Rows never need each other except through the keys and values, and every GEMM treats rows independently, so
 * each block's rows and every isolate's cache come out as a whole-chunk prefill leaves them.
 */
import { ropeTables } from "../engine/positions.ts";
import type { ModelConfig } from "../model/config.ts";
import type { KvSequence } from "./cache.ts";
import type { LayerSlice } from "./decoder-weights.ts";
import type { Kernel } from "./module.ts";
import { packKeys, type PackedKeys } from "./prefill-keys.ts";
import type { Prefill } from "./prefill.ts";

/** One layer's keys and values of some rows, each f32[rows, kvHeads·hd] (RoPE applied to the keys). */
export interface KvRows {
  readonly keys: Float32Array;
  readonly values: Float32Array;
}

/** A block between passes: its rows f32[m, H] (the input of the layer to come) and that layer's queries f32[m, heads·hd]. */
export interface SpreadBlock {
  hidden: Float32Array;
  queries: Float32Array | null;
}

/** The two passes of a layer on a block of rows, over one engine's decoder layers (a {@link Prefill}'s code). */
export class SpreadPrefill {
  constructor(
    private readonly prefill: Prefill,
    private readonly kernel: Kernel,
    private readonly config: ModelConfig,
    private readonly layers: readonly LayerSlice[],
  ) {}

  /**
   * Pass 1 of decoder layer `layer` for a block of `m` rows whose first is at cache position `at`, in a chunk
   * ending before position `end`: the block's queries go into `block`, its keys and values come back.
   */
  keys(layer: number, block: SpreadBlock, m: number, at: number, end: number): KvRows {
    const w = this.layer(layer);
    if (!w.attention) throw new Error(`decoder layer ${layer} has no attention here`);
    const { heads, kvHeads, headDim: hd } = this.config.text;
    const heap = this.kernel.heap;
    const x = this.enter(w, block, m, end);
    const cos = this.prefill.scratch("cos");
    const sin = this.prefill.scratch("sin");
    const rope = ropeTables(this.config.text, at + 1, m); // as Prefill.run: row r at cache position p has RoPE position p + 1
    heap.f32(cos, m * hd).set(rope.cos);
    heap.f32(sin, m * hd).set(rope.sin);
    const kvd = kvHeads * hd;
    const out = { keys: new Float32Array(m * kvd), values: new Float32Array(m * kvd) };
    this.prefill.qkv(w, x, cos, sin, m, null, (kb, vb, r0, n) => {
      out.keys.set(heap.f32(kb, n * kvd), r0 * kvd);
      out.values.set(heap.f32(vb, n * kvd), r0 * kvd);
    });
    block.queries = heap.f32(this.prefill.scratch("q"), m * heads * hd).slice();
    return out;
  }

  /**
   * Pass 2 of decoder layer `layer` for the block (rows [at, at + m) of the chunk [position, position + n)):
   * `kv` (the chunk's keys and values of the layer, f32[n, kvHeads·hd]) into `seq`, then attention, o, MLP.
   * `block.hidden` becomes the rows after the layer (for a part of a cut layer: after its attention block);
   * returns the part's MLP sum f32[m, H] for a part, else null.
   */
  attend(seq: KvSequence, layer: number, block: SpreadBlock, m: number, at: number, position: number, kv: KvRows | null, n: number): Float32Array | null {
    const w = this.layer(layer);
    const { hidden: h, heads, kvHeads, headDim: hd } = this.config.text;
    const heap = this.kernel.heap;
    const end = position + n;
    const x = this.enter(w, block, m, end);
    let packed: PackedKeys | null = null;
    if (w.attention) {
      if (!kv || !block.queries || kv.keys.length !== n * kvHeads * hd || kv.values.length !== n * kvHeads * hd) {
        throw new Error(`layer ${layer}: attention needs the block's queries and the chunk's keys and values f32[${n}, ${kvHeads * hd}]`);
      }
      heap.f32(this.prefill.scratch("q"), m * heads * hd).set(block.queries);
      seq.reserve(end);
      const slot = seq.slot(layer);
      for (const [table, rows] of [["keys", kv.keys], ["values", kv.values]] as const) {
        for (let r = 0; r < n; r++) {
          for (let g = 0; g < kvHeads; g++) heap.f32(seq.at(table, slot, g, position + r), hd).set(rows.subarray((r * kvHeads + g) * hd, (r * kvHeads + g + 1) * hd));
        }
      }
      packed = packKeys(this.prefill, this.kernel, this.config.text, w, seq, end);
    }
    const partial = w.complete ? 0 : this.prefill.scratch("partial");
    this.prefill.attendRows(w, packed, x, at, end, m, end, partial, null);
    block.hidden = heap.f32(x, m * h).slice();
    block.queries = null;
    return partial ? heap.f32(partial, m * h).slice() : null;
  }

  /** The layer after `layer` held here, or null when `layer` is the last. */
  next(layer: number): number | null {
    const i = this.layers.findIndex((l) => l.index === layer);
    return i >= 0 && i + 1 < this.layers.length ? this.layers[i + 1].index : null;
  }

  private layer(index: number): LayerSlice {
    const w = this.layers.find((l) => l.index === index);
    if (!w) throw new RangeError(`this engine holds no decoder layer ${index}`);
    return w;
  }

  /** Sizes the scratch for `m` rows against `end` keys and puts the block's rows in "x". */
  private enter(w: LayerSlice, block: SpreadBlock, m: number, end: number): number {
    const h = this.config.text.hidden;
    if (block.hidden.length !== m * h) throw new Error(`a block of ${m} rows needs f32[${m}, ${h}], got ${block.hidden.length} values`);
    this.prefill.size(w, m, end);
    const x = this.prefill.scratch("x");
    this.kernel.heap.f32(x, m * h).set(block.hidden);
    return x;
  }
}
