/**
 * The stage calls a pipelined request makes, as a formula of the manifest: each call is one subrequest of the
 * session Durable Object's request (Workers RPC over a service binding), so a request of `maxTokens` must stay
 * under the decoder worker's `[limits] subrequests` (wrangler.toml; 10,000 by default on the paid plan).
 *
 *   per request: every text stage's `describe` (the reachability check before the stream starts: a stage that
 *                does not answer is a 503 with retry-after, not a broken stream), ≤ one `embed` per head shard
 *                (the prompt's ids), one `prefill` per decoder stage, one `logits` per head shard, one `drop`
 *                per attention stage (freeing the cache the new one replaces);
 *   per token:   one `step` per decoder stage (every MLP part counts), one `logits` per head shard, and one
 *                `embed` when the fed-back id's row is not in the coordinator's cache (most are).
 *   once per isolate: one `load` per text stage. Replays after a stage restart add prefill + steps again.
 *
 * PaliGemma-3B int4 at 100 MB per stage (36 decoder stages, 5 head shards): 42 calls per token, about 21,600
 * for a 512-token answer, hence `[limits] subrequests = 50000` in the decoder worker's config.
 *
 * A layer cut into parallel parts (manifest `cut: "parallel"`) costs the same per part: each is a decoder stage
 * (one `prefill`, one `step` per token) holding attention (one `drop`), all in one hop. More parts buy latency
 * with calls: int4 with 5 parallel parts per layer (90 decoder stages, 5 head shards) makes 96 calls per token,
 * 49,341 for a 512-token answer; 6 parts or more pass the 50,000.
 */
import { stagesOf, type Manifest } from "../model/manifest.ts";

/** Stage calls of a pipelined request, by phase. */
export interface CallBudget {
  /** Calls made once per request before the first token, at most. */
  readonly perRequest: number;
  /** Calls per generated token fed back, at most (the embed counted as a miss). */
  readonly perToken: number;
  /** Calls of one request generating `maxTokens` tokens, at most (no replay). */
  forTokens(maxTokens: number): number;
}

/** The call budget of `manifest` served as a pipeline. */
export function callBudget(manifest: Manifest): CallBudget {
  const decoder = stagesOf(manifest, "decoder").length;
  const head = stagesOf(manifest, "head").length;
  const attention = stagesOf(manifest, "decoder").filter((s) => s.attention !== false).length;
  const perRequest = decoder + head + head + decoder + head + attention;
  const perToken = decoder + head + 1;
  // The first token comes from the prefill's logits; each later one costs a step of the one before it.
  return { perRequest, perToken, forTokens: (n) => perRequest + Math.max(0, n - 1) * perToken };
}

/** Subrequests the decoder worker's config allows a request (wrangler.toml `[limits] subrequests`). */
export const DECODER_SUBREQUESTS = 50_000;
