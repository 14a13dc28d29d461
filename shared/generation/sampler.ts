/**
 * The sampler: a pure function of one step's logits, the sampling parameters, a vocabulary mask and an explicit
 * RNG (llama2.c / transformers.js style). Order, as in transformers' logits warpers: mask → temperature →
 * top-k → top-p → softmax → draw. Temperature 0 is greedy (argmax, ties → lowest id) and draws nothing.
 *
 * Cost per call: a few O(V) passes over the vocabulary, plus O(V log k) for top-k; top-p alone sorts only the
 * ids of one histogram bin (see candidates.ts). The 257k vocabulary is never sorted.
 */
import { InputError } from "../errors.ts";
import { allowedRanges, drawNucleus, topKIds, walk } from "./candidates.ts";
import type { Rng } from "./rng.ts";

/** How to pick the next token. */
export interface SamplingParams {
  /** ≥ 0; 0 = greedy. */
  readonly temperature: number;
  /** Keep the k most likely tokens; 0 = off. */
  readonly topK: number;
  /** Keep the smallest set of most likely tokens whose probability is ≥ topP; 1 = off. In (0, 1]. */
  readonly topP: number;
}

/** Which ids may never be sampled. */
export interface VocabMask {
  /** Ids ≥ this are never sampled (the padded embedding rows: tokenizer size, e.g. 1588 of 1600). */
  readonly validTokens: number;
  /** Ids below validTokens that are never sampled (e.g. `<image>`, `<pad>`). */
  readonly banned: readonly number[];
}

/** A candidate token and its log-probability under the raw distribution. */
export interface TokenLogprob {
  readonly id: number;
  readonly logprob: number;
}

/** One sampled token. */
export interface Sampled {
  readonly id: number;
  /** log-softmax of the raw logits (masked, temperature 1) at `id`, as OpenAI/vLLM report it. */
  readonly logprob: number;
  /**
   * With `topLogprobs` > 0: that many most likely allowed ids of the same raw distribution (masked, temperature
   * 1, before top-k/top-p), best first, ties → lower id. Absent otherwise.
   */
  readonly top?: readonly TokenLogprob[];
}

/** Checks sampling parameters; throws InputError("unprocessable", …, "temperature" | "top_k" | "top_p"). */
export function validateSamplingParams(params: SamplingParams): void {
  const { temperature, topK, topP } = params;
  if (typeof temperature !== "number" || !Number.isFinite(temperature) || temperature < 0) {
    throw new InputError("unprocessable", `temperature must be a finite number ≥ 0, got ${temperature}`, "temperature");
  }
  if (typeof topK !== "number" || !Number.isSafeInteger(topK) || topK < 0) {
    throw new InputError("unprocessable", `top_k must be an integer ≥ 0 (0 = off), got ${topK}`, "top_k");
  }
  if (typeof topP !== "number" || !(topP > 0 && topP <= 1)) {
    throw new InputError("unprocessable", `top_p must be in (0, 1] (1 = off), got ${topP}`, "top_p");
  }
}

/**
 * Picks the next token from `logits` (float32[V], one step). Pure apart from consuming `rng` (not at all when
 * greedy). With `topLogprobs` > 0 it also returns the most likely alternatives (one O(V log k) pass more; none
 * when 0). Throws InputError for invalid params, RangeError for a bad mask or `topLogprobs`, and Error when a
 * logit is NaN or no allowed id has a finite logit (a numerics bug upstream).
 */
export function sample(logits: Float32Array, params: SamplingParams, mask: VocabMask, rng: Rng, topLogprobs = 0): Sampled {
  validateSamplingParams(params);
  if (!Number.isSafeInteger(topLogprobs) || topLogprobs < 0) {
    throw new RangeError(`topLogprobs must be a non-negative integer, got ${topLogprobs}`);
  }
  if (!Number.isSafeInteger(mask.validTokens) || mask.validTokens <= 0) {
    throw new RangeError(`mask.validTokens must be a positive integer, got ${mask.validTokens}`);
  }
  const ranges = allowedRanges(logits.length, mask.validTokens, mask.banned);

  // Pass 1: max / argmax over allowed ids (strict > keeps the lowest id on ties), NaN check, allowed count.
  let max = -Infinity;
  let argmax = -1;
  let allowed = 0;
  for (let r = 0; r < ranges.length; r += 2) {
    allowed += ranges[r + 1] - ranges[r];
    for (let i = ranges[r]; i < ranges[r + 1]; i++) {
      const l = logits[i];
      if (l > max) {
        max = l;
        argmax = i;
      } else if (l !== l) {
        throw new Error(`sampler: logit ${i} is NaN`);
      }
    }
  }
  if (argmax < 0 || !Number.isFinite(max)) throw new Error("sampler: no allowed token has a finite logit");

  // Pass 2: log of the raw (temperature 1) partition function, relative to max.
  let rawSum = 0;
  for (let r = 0; r < ranges.length; r += 2) {
    for (let i = ranges[r]; i < ranges[r + 1]; i++) rawSum += Math.exp(logits[i] - max);
  }
  const logRawSum = Math.log(rawSum);
  const logprob = (id: number): number => logits[id] - max - logRawSum;
  const top =
    topLogprobs > 0 ? topKIds(logits, ranges, Math.min(topLogprobs, allowed)).map((id) => ({ id, logprob: logprob(id) })) : undefined;
  const result = (id: number): Sampled => (top ? { id, logprob: logprob(id), top } : { id, logprob: logprob(id) });

  const invT = 1 / params.temperature;
  if (params.temperature === 0 || !Number.isFinite(invT)) return result(argmax);
  const weight = (i: number): number => Math.exp((logits[i] - max) * invT);

  const topK = params.topK > 0 && params.topK < allowed ? params.topK : 0;
  if (topK === 0 && params.topP < 1) {
    return result(drawNucleus(logits, ranges, max, invT, params.topP, rng.next()));
  }
  if (topK === 0) {
    // Plain temperature sampling: draw straight from the allowed ids in id order, no sort.
    let total = 0;
    for (let r = 0; r < ranges.length; r += 2) {
      for (let i = ranges[r]; i < ranges[r + 1]; i++) total += weight(i);
    }
    let x = rng.next() * total;
    let last = argmax;
    for (let r = 0; r < ranges.length; r += 2) {
      for (let i = ranges[r]; i < ranges[r + 1]; i++) {
        const w = weight(i);
        if (w === 0) continue;
        last = i;
        if (x < w) return result(i);
        x -= w;
      }
    }
    return result(last); // x landed past the rounded total
  }

  // Top-k (sorted by logit descending), then top-p over the renormalised top-k: the smallest prefix whose
  // weight reaches topP · total, at least one token.
  const ids = topKIds(logits, ranges, topK);
  const weights = ids.map(weight);
  let total = 0;
  for (const w of weights) total += w;
  let kept = 0;
  let keptMass = 0;
  while (kept < ids.length && (kept === 0 || keptMass < params.topP * total)) keptMass += weights[kept++];
  return result(walk(ids.slice(0, kept), weight, rng.next() * keptMass));
}
