/**
 * Decoder states of the kernel engine. A state is a view of a {@link KvSequence}: its first `length` positions,
 * valid while the sequence's epoch still matches. The state a prefill returns owns the sequence (`release()`
 * frees its kernel memory); the states each step returns share it, growing it in place. Stepping from an
 * earlier state (a session reusing its prompt's prefill) cuts the sequence back to that state's length first,
 * which makes the longer states stale: reading or stepping from a stale state is an error.
 */
import type { DecoderState } from "../engine/types.ts";
import type { KvSequence } from "./cache.ts";

/** A state produced by the kernel engine. */
export class KernelDecoderState implements DecoderState {
  private copied: { keys: Float32Array[]; values: Float32Array[] } | null = null;

  constructor(
    readonly length: number,
    readonly seq: KvSequence,
    readonly epoch: number,
    /** Whether this state owns `seq` (the prefill's state does; the states steps return do not). */
    private readonly owner: boolean,
    /** The LoRA adapter the cache was computed with (null: the base model); its steps use the same. */
    readonly adapter: string | null = null,
  ) {}

  /** True while the sequence holds exactly this state's cache (so it can be extended in place). */
  get isTip(): boolean {
    return this.isCurrent && this.seq.length === this.length;
  }

  /** True while the sequence's first `length` positions are this state's cache. */
  get isCurrent(): boolean {
    return this.seq.holds(this.epoch, this.length);
  }

  /** Per global decoder layer f32[kvHeads, length, hd] (copied out of kernel memory on first access). */
  get keys(): Float32Array[] {
    return this.read().keys;
  }

  /** Per global decoder layer f32[kvHeads, length, hd], like `keys`. */
  get values(): Float32Array[] {
    return this.read().values;
  }

  /** Kernel memory of the sequence, when this state owns it (0 for the states steps return). */
  get bytes(): number {
    return this.owner ? this.seq.bytes : 0;
  }

  /** Frees the sequence's kernel memory if this state owns it; every state of the sequence is stale after. */
  release(): void {
    if (this.owner) this.seq.clear();
  }

  private read(): { keys: Float32Array[]; values: Float32Array[] } {
    if (this.copied) return this.copied;
    if (!this.isCurrent) throw new Error("this decoder state is stale: its KV sequence was cut back or released since");
    const out = { keys: [] as Float32Array[], values: [] as Float32Array[] };
    this.seq.layers.forEach((layer, slot) => {
      out.keys[layer] = this.seq.read("keys", slot, this.length);
      out.values[layer] = this.seq.read("values", slot, this.length);
    });
    this.copied = out;
    return out;
  }
}
