/**
 * A session's sequence in a pipeline, as the coordinator keeps it: the key its caches have in every decoder
 * stage, and everything needed to rebuild those caches by replay (the prompt's input rows and the generated
 * ids fed back since). Decoder states of the pipeline engine are views of a sequence: its first `length`
 * positions, valid while no later step cut the sequence below that.
 */
import type { DecoderState } from "../engine/types.ts";

/** The replay record of one prefill and the steps that followed it. */
export class PipelineSequence {
  /** Generated ids fed back after the prompt, in order (position promptRows + i). */
  readonly tokens: number[] = [];
  /** Bumped whenever positions are dropped; cuts[e] = the positions epoch e kept. */
  epoch = 0;
  private readonly cuts: number[] = [0];
  released = false;

  /**
   * @param key the sessions' name for it in every stage
   * @param rows the prompt's decoder input rows f32[count, H]
   * @param adapter the LoRA adapter every prefill, step and replay of it runs with (null: the base)
   */
  constructor(
    readonly key: string,
    readonly rows: Float32Array,
    readonly count: number,
    private readonly onRelease: (key: string) => void,
    readonly adapter: string | null = null,
  ) {}

  /** Positions filled: the prompt and the generated ids. */
  get length(): number {
    return this.count + this.tokens.length;
  }

  /** Drops positions from `length` on (a branch from an earlier state). */
  truncate(length: number): void {
    if (length < this.count || length > this.length) throw new RangeError(`cannot cut a sequence of ${this.length} positions to ${length}`);
    if (length === this.length) return;
    this.tokens.length = length - this.count;
    this.epoch++;
    this.cuts.push(length);
  }

  /** Whether the first `length` positions are still what they were in epoch `epoch`. */
  holds(epoch: number, length: number): boolean {
    if (this.released || epoch > this.epoch || length > this.length) return false;
    for (let e = epoch + 1; e <= this.epoch; e++) if (this.cuts[e] < length) return false;
    return true;
  }

  /** Frees the caches in every stage (once). */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.onRelease(this.key);
  }
}

/** A state of the pipeline engine: the first `length` positions of a {@link PipelineSequence}. */
export class PipelineState implements DecoderState {
  constructor(
    readonly length: number,
    readonly seq: PipelineSequence,
    readonly epoch: number,
    /** Whether this state owns the sequence (the prefill's does; the states steps return share it). */
    private readonly owner: boolean,
  ) {}

  /** The caches live in the stages: a pipeline state has no arrays to hand out. */
  get keys(): Float32Array[] {
    throw new Error("a pipeline state's KV cache lives in its stages; it cannot be read out");
  }

  get values(): Float32Array[] {
    throw new Error("a pipeline state's KV cache lives in its stages; it cannot be read out");
  }

  /** The LoRA adapter the sequence is computed with (null: the base). */
  get adapter(): string | null {
    return this.seq.adapter;
  }

  /** Cache bytes held here: none (the stages hold them). */
  get bytes(): number {
    return 0;
  }

  /** True while the sequence's first `length` positions are this state's. */
  get isCurrent(): boolean {
    return this.seq.holds(this.epoch, this.length);
  }

  /** Frees the stages' caches if this state owns the sequence. */
  release(): void {
    if (this.owner) this.seq.release();
  }
}
