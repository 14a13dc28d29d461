/**
 * A fake PaliGemmaEngine for fast serving tests (Node and workerd): no ONNX, deterministic answers, call
 * counters, and knobs for slow steps and failures. It has the real model's config, so prompt layout, soft-token
 * shapes and vocabulary masks are the real ones; it plans the answer at prefill and emits it one step at a time.
 */
import type { DecoderState, PaliGemmaEngine, PrefillResult, SoftTokens, StepResult } from "../../../shared/engine/types.ts";
import type { ModelConfig } from "../../../shared/model/config.ts";

/** "a green circle" + eos in the shapes tokenizer. */
export const GREEN_CIRCLE = [326, 393, 369, 1] as const;

/** How the fake answers. */
export interface FakeEngineOptions {
  /** Answer ids (eos included to stop) for a prompt; default: {@link GREEN_CIRCLE}. */
  readonly answer?: (promptIds: readonly number[], soft: SoftTokens) => readonly number[];
  /** Delay of each step, ms (lets tests cancel mid-stream). */
  readonly stepDelayMs?: number;
  /** Throw from the n-th step (0-based). */
  readonly failAtStep?: number;
  /** Extra logits set at every step, besides the planned id's 10 (everything else is -10): alternatives. */
  readonly alternatives?: Readonly<Record<number, number>>;
}

/** The fake engine; `calls` counts what ran. */
export class FakeEngine implements PaliGemmaEngine {
  readonly calls = { encode: 0, prefill: 0, step: 0 };

  constructor(
    readonly config: ModelConfig,
    private readonly options: FakeEngineOptions = {},
  ) {}

  async encodeImage(pixels: Float32Array): Promise<SoftTokens> {
    this.calls.encode++;
    const { imageTokens: tokens, projectionDim: dim } = this.config;
    let mean = 0;
    for (const v of pixels) mean += v;
    mean /= pixels.length;
    const data = new Float32Array(tokens * dim);
    for (let i = 0; i < data.length; i++) data[i] = mean + (i % 7) * 0.125;
    return { data, tokens, dim };
  }

  async prefill(soft: SoftTokens, ids: readonly number[]): Promise<PrefillResult> {
    this.calls.prefill++;
    const plan = this.options.answer?.(ids, soft) ?? GREEN_CIRCLE;
    // The plan rides in the state: keys[0] = planned ids, values[0] = [prompt length].
    const state: DecoderState = { length: ids.length, keys: [Float32Array.from(plan)], values: [Float32Array.of(ids.length)] };
    return { state, logits: this.logitsFor(plan[0] ?? 1) };
  }

  async step(state: DecoderState, id: number): Promise<StepResult> {
    const n = this.calls.step++;
    if (this.options.stepDelayMs) await new Promise((r) => setTimeout(r, this.options.stepDelayMs));
    if (this.options.failAtStep !== undefined && n === this.options.failAtStep) throw new Error("fake engine: step failed");
    void id;
    const plan = state.keys[0];
    const generated = state.length + 1 - state.values[0][0];
    const next: DecoderState = { length: state.length + 1, keys: state.keys, values: state.values };
    return { state: next, logits: this.logitsFor(generated < plan.length ? plan[generated] : 1) };
  }

  private logitsFor(id: number): Float32Array {
    const logits = new Float32Array(this.config.text.vocab).fill(-10);
    for (const [alt, value] of Object.entries(this.options.alternatives ?? {})) logits[Number(alt)] = value;
    logits[id] = 10;
    return logits;
  }
}

/** An answer that never ends: a loop over "a green circle" without eos (for abort tests). */
export function endless(): readonly number[] {
  return Array.from({ length: 4096 }, (_, i) => GREEN_CIRCLE[i % 3]);
}
