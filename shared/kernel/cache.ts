/**
 * A session's KV cache in kernel memory. Per attention layer the engine holds, keys and values
 * f32[kvHeads, capacity, hd]: the same [kvHeads, T, hd] layout as onnxruntime's present_key_i / present_value_i,
 * with room to append. A prefill writes its rows straight in; each decode step writes position `length` in
 * place; the capacity doubles when it runs out (one copy per doubling, amortised O(1) per token), never past
 * `maxPositions` when one is set.
 *
 * A sequence belongs to whoever made it (a session): nothing else reuses it, and `clear()` gives its memory
 * back. Its epoch is bumped whenever positions are dropped, and the length each epoch cut back to is kept: a
 * state of n positions made in epoch e is still valid while no later cut went below n ({@link holds}).
 */
import type { TextConfig } from "../model/config.ts";
import type { DecoderState } from "../engine/types.ts";
import type { KernelHeap } from "./heap.ts";

/** One sequence's cache in kernel memory. */
export class KvSequence {
  /** Bumped whenever the contents are replaced or cut; states remember the epoch they were made in. */
  epoch = 0;
  /** cuts[e]: the positions epoch e kept when it began (0 when the contents were replaced). */
  private readonly cuts: number[] = [0];
  length = 0; // positions filled
  capacity = 0; // positions allocated
  keys: number[] = []; // per slot: f32[kvHeads, capacity, hd]
  values: number[] = [];
  private readonly slots: Map<number, number>;

  /**
   * @param layers the decoder layers whose caches this sequence holds (all of them for a whole-model engine)
   * @param maxPositions the most positions it may ever hold (0 = no limit)
   */
  constructor(
    private readonly heap: KernelHeap,
    private readonly text: TextConfig,
    readonly layers: readonly number[] = Array.from({ length: text.layers }, (_, i) => i),
    private readonly maxPositions = 0,
  ) {
    this.slots = new Map(layers.map((l, i) => [l, i]));
  }

  /** Bytes held in kernel memory. */
  get bytes(): number {
    return 2 * this.layers.length * this.text.kvHeads * this.capacity * this.text.headDim * 4;
  }

  /** The slot of decoder layer `layer` in this sequence. */
  slot(layer: number): number {
    const s = this.slots.get(layer);
    if (s === undefined) throw new Error(`this KV sequence holds no cache for decoder layer ${layer}`);
    return s;
  }

  /** Address of head `kv`, position `pos` of slot `slot`'s keys (or values). */
  at(table: "keys" | "values", slot: number, kv: number, pos: number): number {
    return this[table][slot] + 4 * (kv * this.capacity + pos) * this.text.headDim;
  }

  /** Makes room for `positions` positions, keeping the contents (capacity grows by doubling). */
  reserve(positions: number): void {
    if (positions <= this.capacity) return;
    if (this.maxPositions > 0 && positions > this.maxPositions) throw new RangeError(`the KV cache holds at most ${this.maxPositions} positions, ${positions} asked`);
    let cap = Math.max(this.capacity, 16);
    while (cap < positions) cap *= 2;
    if (this.maxPositions > 0) cap = Math.min(cap, this.maxPositions);
    const { kvHeads, headDim: hd } = this.text;
    const moved = (old: number): number => {
      const at = this.heap.alloc(4 * kvHeads * cap * hd);
      if (old >= 0) {
        const mem = new Float32Array(this.heap.memory.buffer);
        for (let kv = 0; kv < kvHeads; kv++) {
          const from = old / 4 + kv * this.capacity * hd;
          mem.copyWithin(at / 4 + kv * cap * hd, from, from + this.length * hd);
        }
        this.heap.release(old);
      }
      return at;
    };
    for (let l = 0; l < this.layers.length; l++) {
      this.keys[l] = moved(this.keys[l] ?? -1);
      this.values[l] = moved(this.values[l] ?? -1);
    }
    this.capacity = cap;
  }

  /** Drops positions from `length` on (a branch from an earlier state); states longer than that go stale. */
  truncate(length: number): void {
    if (length > this.length) throw new RangeError(`cannot truncate a cache of ${this.length} positions to ${length}`);
    if (length === this.length) return;
    this.newEpoch(length);
    this.length = length;
  }

  /** Whether the first `length` positions are still what they were in epoch `epoch`. */
  holds(epoch: number, length: number): boolean {
    if (epoch > this.epoch || length > this.length) return false;
    for (let e = epoch + 1; e <= this.epoch; e++) if (this.cuts[e] < length) return false;
    return true;
  }

  private newEpoch(kept: number): void {
    this.epoch++;
    this.cuts.push(kept);
  }

  /** Replaces the contents with a cache in onnxruntime's layout ([kvHeads, length, hd] per global layer). */
  load(state: DecoderState, room: number): void {
    const { kvHeads, headDim: hd } = this.text;
    this.newEpoch(0);
    this.length = 0;
    this.reserve(state.length + room);
    this.layers.forEach((layer, l) => {
      for (const table of ["keys", "values"] as const) {
        const src = state[table][layer];
        if (src.length !== kvHeads * state.length * hd) throw new Error(`layer ${layer}: cache has ${src.length} values, expected ${kvHeads}×${state.length}×${hd}`);
        for (let kv = 0; kv < kvHeads; kv++) {
          this.heap.f32(this.at(table, l, kv, 0), state.length * hd).set(src.subarray(kv * state.length * hd, (kv + 1) * state.length * hd));
        }
      }
    });
    this.length = state.length;
  }

  /** Copies slot `slot`'s keys or values out as [kvHeads, length, hd]. */
  read(table: "keys" | "values", slot: number, length: number): Float32Array {
    const { kvHeads, headDim: hd } = this.text;
    const out = new Float32Array(kvHeads * length * hd);
    for (let kv = 0; kv < kvHeads; kv++) out.set(this.heap.f32(this.at(table, slot, kv, 0), length * hd), kv * length * hd);
    return out;
  }

  /** Frees the kernel memory; the sequence is empty afterwards. */
  clear(): void {
    for (const at of [...this.keys, ...this.values]) this.heap.release(at);
    this.keys = [];
    this.values = [];
    this.capacity = this.length = 0;
    this.newEpoch(0);
  }
}
