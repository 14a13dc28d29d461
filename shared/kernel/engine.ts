/**
 * The kernel module as a {@link PaliGemmaEngine} over one {@link KernelModel} holding the whole model's
 * decoder and head (and, for encodeImage, its vision tower): prefill, decode steps and vision in one kernel
 * instance, weights held once. A prefill returns a state that owns a fresh KV sequence (the caller releases it);
 * each step grows that sequence in place, and stepping from an earlier state of it cuts it back first.
 */
import type { ModelConfig } from "../model/config.ts";
import { promptRows } from "../engine/prompt-rows.ts";
import type { DecoderState, PrefillResult, SoftTokens, StepResult } from "../engine/types.ts";
import type { KernelModel } from "./model.ts";
import { KernelDecoderState } from "./state.ts";
import type { KernelAdapter } from "./lora.ts";

export class KernelTextEngine {
  readonly config: ModelConfig;

  constructor(readonly model: KernelModel) {
    this.config = model.manifest.config;
  }

  /**
   * Prefix-LM prefill of the whole prompt; the state owns its new KV sequence. With `lora`, every adapted
   * projection adds the adapter's update, and the state remembers the adapter (its steps must use it too).
   */
  prefill(soft: SoftTokens, ids: readonly number[], opts: { allLogits?: boolean; lora?: KernelAdapter | null } = {}): PrefillResult {
    const lora = opts.lora ?? null;
    const h = this.config.text.hidden;
    const rows = promptRows(this.config, soft, ids, (id, out) => this.model.embed(id, out));
    const seq = this.model.newSequence();
    try {
      const out = this.model.prefillRows(seq, rows, ids.length, lora);
      const logits = opts.allLogits ? this.model.headRows(out, ids.length) : this.lastLogits(out.subarray((ids.length - 1) * h));
      return { state: new KernelDecoderState(seq.length, seq, seq.epoch, true, lora?.name ?? null), logits };
    } catch (err) {
      seq.clear();
      throw err;
    }
  }

  /** A state of this engine holding `state`'s cache (an onnxruntime prefill's, say); it owns its new sequence. */
  adopt(state: DecoderState): KernelDecoderState {
    const seq = this.model.newSequence();
    seq.load(state, 16);
    return new KernelDecoderState(seq.length, seq, seq.epoch, true);
  }

  /** One generated token against the cache of `state` (a state this engine made), with the state's adapter. */
  step(state: DecoderState, id: number, lora: KernelAdapter | null = null): StepResult {
    const { text } = this.config;
    if (!Number.isInteger(id) || id < 0 || id >= text.vocab) throw new RangeError(`token id ${id} is outside the vocabulary [0, ${text.vocab})`);
    if (!(state instanceof KernelDecoderState)) throw new Error("the kernel engine steps only from its own states (adopt() a foreign one first)");
    if (!state.isCurrent) throw new Error("this decoder state is stale: its KV sequence was cut back or released since");
    if ((lora?.name ?? null) !== state.adapter) throw new Error(`this decoder state was prefilled with adapter ${state.adapter ?? "(none)"}, not ${lora?.name ?? "(none)"}`);
    const seq = state.seq;
    seq.truncate(state.length); // no-op at the tip; a branch from an earlier state otherwise
    const logits = new Float32Array(text.vocab);
    this.model.step(seq, id, logits, lora);
    return { state: new KernelDecoderState(seq.length, seq, seq.epoch, false, state.adapter), logits };
  }

  /** Logits f32[vocab] of one final hidden row, through the decode path's GEMVs. */
  private lastLogits(row: Float32Array): Float32Array {
    const logits = new Float32Array(this.config.text.vocab);
    this.model.logitsOf(row, logits);
    return logits;
  }
}
