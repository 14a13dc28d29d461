/**
 * Decoder states of the kernel path. A state points at a kernel KV sequence (valid while the sequence's epoch
 * and length still match it) and remembers how to rebuild itself: the onnxruntime state it grew from (a
 * prefill) and the token ids fed since. So any state stays usable: the tip of a sequence steps in place,
 * anything else is rebuilt (copy the origin in, replay the ids), and `keys`/`values` can always be read.
 */
import type { DecoderState } from "../engine/types.ts";
import type { KvSequence } from "./cache.ts";

/** Token ids fed after the origin, newest first (shared tails, so a step costs O(1)). */
export interface TokenPath {
  readonly id: number;
  readonly prev: TokenPath | null;
}

/** Ids of a path, oldest first. */
export function pathIds(path: TokenPath | null): number[] {
  const ids: number[] = [];
  for (let p = path; p; p = p.prev) ids.push(p.id);
  return ids.reverse();
}

/** A state produced by the kernel decode path. */
export class KernelDecoderState implements DecoderState {
  private copied: { keys: Float32Array[]; values: Float32Array[] } | null = null;

  constructor(
    readonly length: number,
    readonly seq: KvSequence,
    readonly epoch: number,
    /** The state this one grew from (not a KernelDecoderState). */
    readonly origin: DecoderState,
    readonly path: TokenPath | null,
    /** Reads the cache out when this state is stale (rebuilds it in a scratch sequence). */
    private readonly materialize: (s: KernelDecoderState) => { keys: Float32Array[]; values: Float32Array[] },
  ) {}

  /** True while the sequence still holds exactly this state's cache (so it can be extended in place). */
  get isTip(): boolean {
    return this.seq.epoch === this.epoch && this.seq.length === this.length;
  }

  /** True while the sequence's first `length` positions are this state's cache. */
  get isCurrent(): boolean {
    return this.seq.epoch === this.epoch && this.seq.length >= this.length;
  }

  /** Per layer f32[kvHeads, length, hd] (copied out of kernel memory on first access, then kept). */
  get keys(): Float32Array[] {
    this.copied ??= this.materialize(this);
    return this.copied.keys;
  }

  /** Per layer f32[kvHeads, length, hd], like `keys`. */
  get values(): Float32Array[] {
    this.copied ??= this.materialize(this);
    return this.copied.values;
  }
}

/** The ORT-layout origin of any state. */
export function originOf(state: DecoderState): { origin: DecoderState; path: TokenPath | null } {
  return state instanceof KernelDecoderState ? { origin: state.origin, path: state.path } : { origin: state, path: null };
}
