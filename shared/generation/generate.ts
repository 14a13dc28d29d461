/**
 * The generation loop: prefill once, then sample → step until eos, a stop string or the token limit.
 * Small single-purpose pieces do the work (sampler, stop criteria, incremental detokeniser); this file only
 * wires them and keeps the invariants (cache length = prompt + generated tokens) checked every step.
 */
import type { DecoderState, PaliGemmaEngine, PrefillResult, SoftTokens } from "../engine/types.ts";
import type { PaliGemmaTokenizer } from "../text/tokenizer.ts";
import { IncrementalDetokenizer } from "../text/detokenizer.ts";
import { createRng } from "./rng.ts";
import { sample, validateSamplingParams, type SamplingParams, type TokenLogprob, type VocabMask } from "./sampler.ts";
import { StopCriteria, type StopReason } from "./stopping.ts";

export interface GenerateOptions {
  readonly sampling: SamplingParams; // temperature 0 = greedy
  readonly seed: number;
  readonly maxTokens: number;
  readonly eos: readonly number[];
  readonly stop?: readonly string[];
  readonly mask: VocabMask;
  /** Alternatives to report per token (0 / absent = none, and no top-k pass). */
  readonly topLogprobs?: number;
  /** Null when the model ships no tokenizer: ids only, empty text. */
  readonly tokenizer: PaliGemmaTokenizer | null;
  /** Stops the loop between two tokens (client gone, deadline). */
  readonly signal?: AbortSignal;
  /** A prefill already computed for exactly this prompt (a session's prefix cache). */
  readonly prefilled?: PrefillResult;
  /** Clock in ms (injectable for tests). */
  readonly now?: () => number;
}

/**
 * One generated token. `text` is the new visible text this token completes: "" for eos, for part of a UTF-8
 * sequence, or while a stop string could be forming.
 */
export interface GeneratedToken {
  readonly index: number;
  readonly id: number;
  readonly text: string;
  readonly logprob: number;
  /** The most likely alternatives, when `topLogprobs` asked for them. */
  readonly top?: readonly TokenLogprob[];
}

export interface GenerationResult {
  readonly finishReason: StopReason;
  readonly text: string;
  readonly ids: readonly number[]; // generated ids, eos included when generation stopped on it
  readonly promptTokens: number;
  readonly prefill: PrefillResult; // reusable for the same prompt
  readonly state: DecoderState; // cache after the last generated token that was fed back
  readonly timings: { readonly prefillMs: number; readonly timeToFirstTokenMs: number; readonly decodeMs: number; readonly tokensPerSecond: number };
}

export class GenerationAborted extends Error {
  constructor() {
    super("generation was aborted");
    this.name = "GenerationAborted";
  }
}

export async function* generate(
  engine: PaliGemmaEngine,
  soft: SoftTokens,
  promptIds: readonly number[],
  opts: GenerateOptions,
): AsyncGenerator<GeneratedToken, GenerationResult> {
  validateSamplingParams(opts.sampling);
  const now = opts.now ?? (() => performance.now());
  const stopper = new StopCriteria({ eos: opts.eos, maxTokens: opts.maxTokens, stop: opts.stop });
  const detok = opts.tokenizer ? new IncrementalDetokenizer(opts.tokenizer) : null;
  const rng = createRng(opts.seed);
  const t0 = now();

  const prefill = opts.prefilled ?? (await engine.prefill(soft, promptIds));
  let handedOut = false;
  try {
    const result = yield* decodeLoop(engine, promptIds, opts, prefill, { now, stopper, detok, rng, t0 });
    handedOut = true;
    return result;
  } finally {
    // A prefill made here that never reached the caller (an error, an abort, a consumer that stopped reading).
    if (!handedOut && !opts.prefilled) prefill.state.release?.();
  }
}

/** The loop after the prefill: sample → step until a stop. */
async function* decodeLoop(
  engine: PaliGemmaEngine,
  promptIds: readonly number[],
  opts: GenerateOptions,
  prefill: PrefillResult,
  ctx: { now: () => number; stopper: StopCriteria; detok: IncrementalDetokenizer | null; rng: ReturnType<typeof createRng>; t0: number },
): AsyncGenerator<GeneratedToken, GenerationResult> {
  const { now, stopper, detok, rng, t0 } = ctx;
  const tPrefill = now();
  let state = prefill.state;
  let logits = prefill.logits;
  const ids: number[] = [];
  let full = ""; // all decoded text
  let shown = 0; // characters of `full` already streamed
  let tFirst = tPrefill;
  for (;;) {
    if (opts.signal?.aborted) throw new GenerationAborted();
    const { id, logprob, top } = sample(logits, opts.sampling, opts.mask, rng, opts.topLogprobs ?? 0);
    const extra = top ? { top } : {};
    ids.push(id);
    if (ids.length === 1) tFirst = now();
    if (detok && !opts.eos.includes(id)) full += detok.push(id);
    const check = stopper.check(id, full);
    if (check.stop) {
      if (detok && check.reason !== "stop") full += detok.flush();
      const text = check.reason === "stop" ? check.trimmedText! : full;
      yield { index: ids.length - 1, id, text: text.slice(shown), logprob, ...extra };
      const tEnd = now();
      const decodeMs = tEnd - tFirst;
      return {
        finishReason: check.reason!,
        text,
        ids,
        promptTokens: promptIds.length,
        prefill,
        state,
        timings: {
          prefillMs: tPrefill - t0,
          timeToFirstTokenMs: tFirst - t0,
          decodeMs,
          tokensPerSecond: ids.length > 1 && decodeMs > 0 ? ((ids.length - 1) * 1000) / decodeMs : 0,
        },
      };
    }
    const visible = full.length - stopper.holdBack(full);
    yield { index: ids.length - 1, id, text: full.slice(shown, Math.max(shown, visible)), logprob, ...extra };
    shown = Math.max(shown, visible);
    const expected = state.length + 1;
    ({ state, logits } = await engine.step(state, id));
    if (state.length !== expected) throw new Error(`cache length ${state.length} after a step, expected ${expected}`);
  }
}

/** Runs `generate` to the end, collecting the tokens. */
export async function generateAll(
  engine: PaliGemmaEngine,
  soft: SoftTokens,
  promptIds: readonly number[],
  opts: GenerateOptions,
  onToken?: (t: GeneratedToken) => void,
): Promise<GenerationResult & { tokens: GeneratedToken[] }> {
  const tokens: GeneratedToken[] = [];
  const it = generate(engine, soft, promptIds, opts);
  for (;;) {
    const r = await it.next();
    if (r.done) return { ...r.value, tokens };
    tokens.push(r.value);
    onToken?.(r.value);
  }
}
