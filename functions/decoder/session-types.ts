/** The typed RPC surface of a session Durable Object, and what it persists. */
import type { RunInfo } from "../../shared/api/events.ts";
import type { GenerationParams } from "../../shared/api/params.ts";
import type { EngineMemory } from "../../shared/engine/types.ts";
import type { ErrorData } from "../../shared/errors.ts";
import type { PromptSpan } from "../../shared/text/prompt.ts";
import type { EncodedSoftTokens } from "../../shared/worker/soft-token-store.ts";

/** One generate request, as the decoder worker hands it to a session. */
export interface SessionRequest {
  /**
   * The session's name, as the client gave it; null for a request that named none: it runs in a transient
   * session object that stores nothing (no record, no alarm) and frees its cache when the request ends.
   */
  readonly session: string | null;
  /** Whether the client named the session (continuing an unknown one is then a 404, not a missing image). */
  readonly named?: boolean;
  /** Owner id of the request's API key ("" when open): only images stored by the same owner are used. */
  readonly owner?: string;
  /** The prefix text (the prompt). */
  readonly prompt: string;
  /** The LoRA adapter to run with (absent: the base model), and whether it changes the vision tower. */
  readonly adapter?: string;
  readonly visionAdapter?: boolean;
  /** Which request field each part of `prompt` came from (names the field a refused control token is in). */
  readonly promptSpans?: readonly PromptSpan[];
  /** The request's id (`x-request-id`), for the session's log lines. */
  readonly requestId?: string;
  /** The image to use; absent = the session's current image. */
  readonly imageId?: string;
  /**
   * The soft tokens of `imageId`, computed by the vision worker for this request and sent along (service binding
   * RPC → decoder → session RPC): used instead of a KV read, which is only eventually consistent across locations.
   */
  readonly softTokens?: EncodedSoftTokens;
  readonly sampling: GenerationParams;
  /** The decoder worker's id for this run, for {@link SessionApi.cancel}-style calls when the client goes away. */
  readonly runId?: string;
  /** Decode the masks of a segmentation answer (the native API asks; OpenAI's returns the text only). */
  readonly masks?: boolean;
}

/** The answer to {@link SessionRequest}: an NDJSON event stream, or an error found before streaming (as data: RPC carries no error classes). */
export type SessionReply =
  | { readonly ok: true; readonly info: RunInfo; readonly stream: ReadableStream<Uint8Array> }
  | { readonly ok: false; readonly error: ErrorData };

/**
 * What a session stores (Durable Object storage, key "session"): enough to rebuild its in-memory state after
 * eviction. The soft tokens are re-read from KV by image id and the prompt prefilled again.
 */
export interface SessionRecord {
  readonly v: 1;
  readonly model: string;
  readonly image_id: string;
  /** The last request's whole prompt: image tokens, bos, prefix, "\n". */
  readonly prompt_ids: readonly number[];
  /** Unix milliseconds. */
  readonly updated_at: number;
}

/** How the last generation of a session ended ("aborted": the client went away). */
export interface LastRun {
  readonly finish_reason: "eos" | "length" | "stop" | "aborted" | "error";
  readonly completion_tokens: number;
}

/** A session's state, for `GET /v1/sessions/:id` and tests. */
export interface SessionInfo {
  readonly session: string | null;
  readonly record: SessionRecord | null;
  /** Whether the image's soft tokens and a prefill are held in memory (lost on eviction). */
  readonly memory: { readonly image_id: string; readonly prefix_tokens: number; /** KV cache bytes this session holds. */ readonly cache_bytes: number; /** The adapter of the held prefill (absent: the base). */ readonly adapter?: string } | null;
  /** The engine this session's isolate decodes with (backends, memory, whether onnxruntime exists); null before the model is loaded. */
  readonly engine: EngineMemory | null;
  readonly busy: boolean;
  readonly queued: number;
  readonly last_run: LastRun | null;
}
