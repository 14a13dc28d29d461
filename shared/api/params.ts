/**
 * Generation parameters shared by the native and OpenAI-compatible APIs, after validation and defaults.
 *
 * Defaults follow PaliGemma practice rather than OpenAI's: temperature 0 (greedy), because the checkpoints are
 * trained for exact-format answers (captions, `<loc>` boxes) that sampling degrades.
 */
import { z } from "zod";

/** Hard upper bound on `max_tokens` in any request; a deployment may set a lower one (`MAX_NEW_TOKENS`). */
export const MAX_TOKENS_LIMIT = 2048;
/** Default `max_tokens` when a request gives none. */
export const DEFAULT_MAX_TOKENS = 64;
/** Longest accepted prompt text, in UTF-16 code units (the token limit is checked after tokenizing). */
export const MAX_PROMPT_CHARS = 8192;
/** At most this many stop strings, as in OpenAI's API. */
export const MAX_STOP_STRINGS = 4;

/** A client-chosen session id: 1–128 characters of [A-Za-z0-9_.:-] ("/" never occurs: see scopedSessionName). */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
/** What {@link SESSION_ID_PATTERN} allows, in words, for error messages. */
export const SESSION_ID_RULE = "a session id is 1-128 characters of A-Z a-z 0-9 _ . : -";

/** A session id in a body field or path. */
export const sessionIdSchema = z.string().regex(SESSION_ID_PATTERN, SESSION_ID_RULE);

/** An image id as the vision worker returns it: "img_" + 64 hex digits. */
export const imageIdSchema = z.string().regex(/^img_[0-9a-f]{64}$/, 'an image_id is "img_" followed by 64 hex digits');

/** `stop`: one string or up to four, each non-empty. */
export const stopSchema = z.union([
  z.string().min(1),
  z.array(z.string().min(1)).max(MAX_STOP_STRINGS),
]);

/**
 * How a request wants its answer generated, as the session runs it: the sampler's settings (shared/generation/
 * sampler.ts `SamplingParams`, with their API defaults), the stopping rules, the seed and what to report.
 */
export interface GenerationParams {
  readonly maxTokens: number;
  /** 0 = greedy. */
  readonly temperature: number;
  /** null = no top-k cut. */
  readonly topK: number | null;
  /** 1 = no nucleus cut. */
  readonly topP: number;
  /** null = unseeded (the session draws one). */
  readonly seed: number | null;
  readonly stop: readonly string[];
  /** Return per-token log-probabilities (always computed; OpenAI only shows them on request). */
  readonly logprobs: boolean;
  /** Also return this many most likely alternatives per token (0 = none: the top-k is then never computed). */
  readonly topLogprobs: number;
}

/** Normalises `stop` to an array. */
export function stopList(stop: string | readonly string[] | undefined | null): string[] {
  if (stop === undefined || stop === null) return [];
  return typeof stop === "string" ? [stop] : [...stop];
}
