/**
 * An engine for end-to-end mask tests: the real model for every prompt, except that a `segment …` prefix is
 * answered with a fixed script (objects with the VQ-VAE golden's codes, test/workers/segment-answer.ts), since
 * the shapes model was never trained to segment. Scripted states are told apart from real ones by identity.
 */
import type { DecoderState, PaliGemmaEngine, PrefillResult, SoftTokens, StepResult } from "../../../shared/engine/types.ts";
import type { PaliGemmaTokenizer } from "../../../shared/text/tokenizer.ts";
import { FakeEngine } from "./fake-engine.ts";

/** The real engine, with segment prompts answered by `answerIds`. */
export class ScriptedSegmentEngine implements PaliGemmaEngine {
  private readonly scripted = new WeakSet<DecoderState>();
  private readonly fake: FakeEngine;

  constructor(
    private readonly real: PaliGemmaEngine,
    private readonly tokenizer: PaliGemmaTokenizer,
    answerIds: readonly number[],
  ) {
    this.fake = new FakeEngine(real.config, { answer: () => answerIds });
  }

  get config() {
    return this.real.config;
  }

  encodeImage(pixels: Float32Array): Promise<SoftTokens> {
    return this.real.encodeImage(pixels);
  }

  async prefill(soft: SoftTokens, ids: readonly number[], opts?: { allLogits?: boolean }): Promise<PrefillResult> {
    const prefix = this.tokenizer.decode(ids.slice(this.config.imageTokens)).trim();
    if (!/^segment\b/.test(prefix)) return this.real.prefill(soft, ids, opts);
    const result = await this.fake.prefill(soft, ids);
    this.scripted.add(result.state);
    return result;
  }

  async step(state: DecoderState, id: number): Promise<StepResult> {
    if (!this.scripted.has(state)) return this.real.step(state, id);
    const result = await this.fake.step(state, id);
    this.scripted.add(result.state);
    return result;
  }
}
