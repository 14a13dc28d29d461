/**
 * Kernel-owned KV caches. One sequence holds, per decoder layer, keys and values f32[kvHeads, capacity, hd]:
 * the same [kvHeads, T, hd] layout as onnxruntime's present_key_i / present_value_i, with room to append.
 * A prefill's cache is copied in once (`load`); each decode step then writes position `length` in place,
 * and the capacity doubles when it runs out (one copy per doubling, amortised O(1) per token).
 *
 * A small pool bounds how many sequences live at once (least recently used is recycled); every reuse bumps
 * the sequence's epoch, which is how states that pointed into it learn they are stale.
 */
import type { TextConfig } from "../model/config.ts";
import type { DecoderState } from "../engine/types.ts";
import type { KernelHeap } from "./heap.ts";

/** One sequence's cache in kernel memory. */
export class KvSequence {
  /** Bumped whenever the contents are replaced; states remember the epoch they were made in. */
  epoch = 0;
  length = 0; // positions filled
  capacity = 0; // positions allocated
  keys: number[] = []; // per layer: f32[kvHeads, capacity, hd]
  values: number[] = [];
  lastUse = 0;

  constructor(
    private readonly heap: KernelHeap,
    private readonly text: TextConfig,
  ) {}

  /** Bytes held in kernel memory. */
  get bytes(): number {
    return 2 * this.text.layers * this.text.kvHeads * this.capacity * this.text.headDim * 4;
  }

  /** Address of head `kv`, position `pos` of layer `layer`'s keys (or values). */
  at(table: "keys" | "values", layer: number, kv: number, pos: number): number {
    return this[table][layer] + 4 * (kv * this.capacity + pos) * this.text.headDim;
  }

  /** Makes room for `positions` positions, keeping the contents (capacity grows by doubling). */
  reserve(positions: number): void {
    if (positions <= this.capacity) return;
    let cap = Math.max(this.capacity, 16);
    while (cap < positions) cap *= 2;
    const { layers, kvHeads, headDim: hd } = this.text;
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
    for (let l = 0; l < layers; l++) {
      this.keys[l] = moved(this.keys[l] ?? -1);
      this.values[l] = moved(this.values[l] ?? -1);
    }
    this.capacity = cap;
  }

  /** Replaces the contents with a cache in onnxruntime's layout ([kvHeads, length, hd] per layer). */
  load(state: DecoderState, room: number): void {
    const { layers, kvHeads, headDim: hd } = this.text;
    this.epoch++;
    this.length = 0;
    this.reserve(state.length + room);
    for (let l = 0; l < layers; l++) {
      for (const table of ["keys", "values"] as const) {
        const src = state[table][l];
        if (src.length !== kvHeads * state.length * hd) throw new Error(`layer ${l}: cache has ${src.length} values, expected ${kvHeads}×${state.length}×${hd}`);
        for (let kv = 0; kv < kvHeads; kv++) {
          this.heap.f32(this.at(table, l, kv, 0), state.length * hd).set(src.subarray(kv * state.length * hd, (kv + 1) * state.length * hd));
        }
      }
    }
    this.length = state.length;
  }

  /** Copies layer `layer`'s keys or values out as [kvHeads, length, hd]. */
  read(table: "keys" | "values", layer: number, length: number): Float32Array {
    const { kvHeads, headDim: hd } = this.text;
    const out = new Float32Array(kvHeads * length * hd);
    for (let kv = 0; kv < kvHeads; kv++) out.set(this.heap.f32(this.at(table, layer, kv, 0), length * hd), kv * length * hd);
    return out;
  }

  /** Frees the kernel memory; the sequence is empty afterwards. */
  clear(): void {
    for (const at of [...this.keys, ...this.values]) this.heap.release(at);
    this.keys = [];
    this.values = [];
    this.capacity = this.length = 0;
    this.epoch++;
  }
}

/** At most `max` sequences; acquiring beyond that recycles the least recently used one. */
export class KvPool {
  private readonly sequences: KvSequence[] = [];
  private clock = 0;

  constructor(
    private readonly heap: KernelHeap,
    private readonly text: TextConfig,
    private readonly max: number,
  ) {
    if (!(max >= 1)) throw new RangeError("the KV pool needs room for at least one sequence");
  }

  /** A sequence to load new contents into (fresh, or the least recently used one). */
  acquire(): KvSequence {
    let seq: KvSequence;
    if (this.sequences.length < this.max) {
      seq = new KvSequence(this.heap, this.text);
      this.sequences.push(seq);
    } else {
      seq = this.sequences.reduce((a, b) => (a.lastUse <= b.lastUse ? a : b));
      seq.epoch++;
    }
    this.touch(seq);
    return seq;
  }

  /** Marks a sequence as just used. */
  touch(seq: KvSequence): void {
    seq.lastUse = ++this.clock;
  }

  /** Bytes of every sequence's cache. */
  get bytes(): number {
    return this.sequences.reduce((a, s) => a + s.bytes, 0);
  }
}
