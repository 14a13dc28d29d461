/**
 * The stage contract: what the coordinator (the session Durable Object) asks one stage of a model cut into
 * stages, and what comes back. A stage is one manifest stage (a vision layer range, a decoder layer range or one
 * part of a layer's MLP, or a vocabulary range of the tied head), held by whatever implements this interface:
 * a stage Worker (functions/stage/, over a service binding), an in-process kernel instance (tests, the CLI), or
 * later a container or GPU runtime running the same graphs. Everything here is structured-clonable data
 * (typed arrays, plain objects), so it crosses Workers RPC as it is.
 *
 *   coordinator ──embed(ids)──────────────▶ head shard holding those ids   → rows f32[n, H] (· sqrt(H))
 *               ──prefill / step(rows)────▶ decoder stages, in layer order  → rows f32[n, H] (+ MLP-part sums)
 *               ──logits(last row)────────▶ every head shard, in parallel   → logits f32[rows, to − from]
 *
 * Stages never call each other: the coordinator calls each in turn (Workers limit nested calls in depth).
 *
 * Sessions: a decoder stage holding attention keeps, per session key, its layers' KV cache. Every prefill and
 * step names the cache position its rows start at; a stage whose cache for that key is missing (it restarted and
 * lost its memory) or shorter answers `{ok: false}` instead of computing, and the coordinator rebuilds the cache
 * by replaying the session (shared/pipeline/coordinator.ts). A longer cache is cut back first (a session
 * branching from an earlier state). Stages without attention (MLP-only parts, head, vision) hold no session.
 *
 * LoRA adapters: every prefill and step names the adapter its rows are computed with (absent or null: the base),
 * and so does a vision call for an adapter that changes the vision tower or projector. A stage loads that
 * adapter's factors for its own layers on first use (`adapters/<name>/<stage>.bin`; none when the adapter does
 * not touch them), keeps them under its adapter budget (least recently used dropped), and keys its session caches
 * by adapter: rows under another adapter than the cache's are refused as `missing` (the coordinator replays).
 */

import type { SpreadRpc } from "./spread-rpc.ts";

/** Which rows of the model a stage computes (as the manifest names it). */
export interface StageIdentity {
  readonly name: string;
  readonly kind: "vision" | "decoder" | "head";
  /** Layers [from, to) (vision, decoder) or vocabulary rows [from, to) (head). */
  readonly from: number;
  readonly to: number;
  /** The MLP intermediate rows a part of a cut layer computes; null for whole layers. */
  readonly mlp: { readonly from: number; readonly to: number } | null;
  /** Whether the stage holds attention layers (and so per-session KV caches). */
  readonly attention: boolean;
}

/** A stage's state as `describe` reports it. */
export interface StageInfo extends StageIdentity {
  readonly model: string;
  /** Whether its weights are in memory. */
  readonly loaded: boolean;
  /** Sessions whose caches it holds. */
  readonly sessions: number;
  /** Weight bytes held in the kernel, kernel linear memory (0 before loading). */
  readonly weightBytes: number;
  readonly memoryBytes: number;
  /** LoRA adapters whose factors it holds, least recently used first (bytes: this stage's factors only). */
  readonly adapters: readonly { readonly name: string; readonly bytes: number }[];
}

/** What `load` returns once the weights are in memory. */
export interface StageLoaded extends StageInfo {
  /**
   * For a part of a cut decoder layer: that layer's post-feed-forward norm (1 + w) f32[H], which the
   * coordinator applies to the parts' sum (null for Gemma 1 and for every other stage).
   */
  readonly postFfNorm: Float32Array | null;
}

/** Rows for one session: `count` rows f32[count, H] starting at cache position `position` (0-based). */
export interface RowsRequest {
  readonly session: string;
  readonly position: number;
  readonly rows: Float32Array;
  readonly count: number;
  /** The LoRA adapter's name (absent or null: the base model). */
  readonly adapter?: string | null;
  /**
   * A part of a parallel cut other than the first: answer the MLP part's sum only (`hidden` empty). Every part
   * computes the same attention output bit for bit, so the coordinator takes it from the first part alone and
   * the prefill's rows [count, H] come back once, not once per part.
   */
  readonly partialOnly?: boolean;
}

/**
 * A decoder stage's answer for one session's rows: the rows after its layers (for a part of a cut layer: the
 * attention block's output for the first part and every part of a parallel cut, else its input; empty when the
 * request was `partialOnly`) and the part's MLP sum (null for whole layers),
 * and the session's cache length after the call; or a refusal when the stage does not hold the cache the rows
 * continue (`missing`: no cache for that session; `behind`: shorter than `position`).
 */
export type RowsReply =
  | { readonly ok: true; readonly hidden: Float32Array; readonly partial: Float32Array | null; readonly length: number }
  | { readonly ok: false; readonly reason: "missing" | "behind"; readonly length: number };

/** Rows of final hidden states to score: f32[count, H]; `all` uses the prefill GEMMs (every row's logits). */
export interface LogitsRequest {
  readonly rows: Float32Array;
  readonly count: number;
  readonly all?: boolean;
}

/** The RPC methods of one stage (with the sequence-parallel prefill of shared/api/spread-rpc.ts). */
export interface StageRpc extends SpreadRpc {
  /** Identity and state; loads nothing. */
  describe(): Promise<StageInfo>;
  /** Loads the weights (streamed from the model store) if they are not in memory yet. */
  load(): Promise<StageLoaded>;
  /**
   * Decoder: a chunk of rows of one session (the prompt's prefix-LM prefill: those rows attend to each other
   * bidirectionally). Position 0 starts the session's cache afresh.
   */
  prefill(req: RowsRequest): Promise<RowsReply>;
  /** Decoder: one row (a generated token) for each of several sessions, answered in order. */
  step(batch: readonly RowsRequest[]): Promise<RowsReply[]>;
  /** Frees the caches of these sessions (unknown ones are ignored). */
  drop(sessions: readonly string[]): Promise<void>;
  /** Head: embed(id) · sqrt(H) of ids in this shard's vocabulary range, f32[ids.length, H]. */
  embed(ids: readonly number[]): Promise<Float32Array>;
  /** Head: final norm, this shard's rows of the tied embedding, final soft-cap → f32[count, to − from]. */
  logits(req: LogitsRequest): Promise<Float32Array>;
  /**
   * Vision: pixels f32[1, 3, S, S] (first stage) or rows f32[N, D] → rows f32[N, D], soft tokens at the last;
   * with `adapter`, through that LoRA adapter's vision and projector updates.
   */
  vision(input: Float32Array, adapter?: string | null): Promise<Float32Array>;
}

/** The Worker binding name of stage `name` in the decoder worker's config: `STAGE_` + upper-cased name. */
export function stageBinding(name: string): string {
  return `STAGE_${name.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
}
