/**
 * What a session streams while it generates, independent of the wire API that will present it.
 *
 * The session Durable Object writes these as NDJSON (one JSON object per line) into a byte stream that it
 * returns over RPC; the decoder worker reads them back and renders the native SSE stream, OpenAI's chunks, or
 * one JSON body. Keeping this format neutral lets one decode loop serve every API.
 */
import type { ErrorData } from "../errors.ts";
import type { GeneratedToken } from "../generation/generate.ts";
import type { SegmentMask } from "../tasks/loc-answer.ts";

/** An alternative to a generated token: its own text and bytes (shared/text/token-piece.ts). */
export interface TopLogprob {
  readonly id: number;
  readonly token: string;
  readonly logprob: number;
  readonly bytes: readonly number[];
}

/** One generated token as a session streams it: the decode loop's {@link GeneratedToken}, its alternatives with their text. */
export interface TokenEvent extends Omit<GeneratedToken, "top"> {
  /** The most likely tokens at this step, best first; only when the request asked for `top_logprobs`. */
  readonly top_logprobs?: readonly TopLogprob[];
}

/** Why generation ended: end-of-sequence token, token limit, or a stop string. */
export type FinishReason = "eos" | "length" | "stop";

/** What the session reused for this request (see README "Sessions and the prefix cache"). */
export interface PrefixCacheReport {
  /** "hit": the image's soft tokens were already in the session's memory (no KV read, no encode). */
  readonly soft_tokens: "hit" | "miss";
  /** "hit": the same image and prompt were prefilled before; the prefill KV cache was reused (no prefill). */
  readonly kv: "hit" | "miss";
  /** Prompt tokens whose keys/values were reused (the whole prompt on a kv hit, else 0). */
  readonly cached_tokens: number;
}

/** Wall-clock timings measured inside the session, from the moment it accepted the request. */
export interface Timings {
  readonly time_to_first_token_ms: number;
  readonly prefill_ms: number;
  readonly decode_ms: number;
  readonly total_ms: number;
  /** Generated tokens per second over the decode phase (after the first token). */
  readonly tokens_per_second: number;
  /** Time spent decoding segmentation masks (present only when masks were decoded; part of total_ms). */
  readonly masks_ms?: number;
}

/** Token accounting, in the native API's form (OpenAI's is derived from it). */
export interface Usage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
  readonly prefix_cache: PrefixCacheReport;
  readonly timings: Timings;
}

/** The final result of one generation. */
export interface DoneEvent {
  readonly finish_reason: FinishReason;
  readonly text: string;
  /** Every generated id, including a final eos. */
  readonly ids: readonly number[];
  readonly usage: Usage;
  /**
   * The masks of the answer's segments, in answer order, as COCO RLE over the original image: present only
   * when the request asked for them, the model has a VQ-VAE decoder and the answer has segments.
   */
  readonly masks?: readonly SegmentMask[];
}

/** One line of a session's event stream. */
export type SessionEvent =
  | { readonly type: "token"; readonly token: TokenEvent }
  | { readonly type: "done"; readonly done: DoneEvent }
  /** A failure after the stream started; each API renders it in its own shape (`code` only in OpenAI's). */
  | { readonly type: "error"; readonly error: ErrorData };

/** Facts about a request that are known before the first token (returned with the stream). */
export interface RunInfo {
  /** The session's name; null for an unnamed request (a transient session, nothing to continue). */
  readonly session: string | null;
  readonly model: string;
  readonly image_id: string;
  readonly prompt_tokens: number;
  /** The original image's size (from the vision worker), for boxes in pixels; null when unknown. */
  readonly image_size?: { readonly width: number; readonly height: number } | null;
}

const encoder = new TextEncoder();

/** Encodes one event as an NDJSON line. */
export function encodeEvent(event: SessionEvent): Uint8Array {
  return encoder.encode(`${JSON.stringify(event)}\n`);
}

/**
 * Reads NDJSON session events from a byte stream, one at a time. `cancel()` cancels the underlying stream at
 * once (a pending `next()` then resolves null): that is how a disconnecting client stops the decode loop.
 */
export class EventReader {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private buffer = "";
  private ended = false;
  /** A done or error event was read: the run is over, a later cancel stops nothing. */
  private finished = false;

  /**
   * @param stream NDJSON bytes, as written by {@link encodeEvent}
   * @param onCancel called once when the reader is cancelled before the run's last event (the client went
   *   away): stream cancellation alone does not always cross an RPC boundary, so the caller can also say so.
   */
  constructor(
    stream: ReadableStream<Uint8Array>,
    private onCancel?: () => void,
  ) {
    this.reader = stream.getReader();
    // A stream that breaks (an RPC stream whose Durable Object went away) rejects `closed` too; next() reports
    // the failure, so this copy must not surface as an unhandled rejection.
    this.reader.closed.catch(() => undefined);
  }

  /** The next event, or null at the end of the stream (or after cancel). */
  async next(): Promise<SessionEvent | null> {
    for (;;) {
      const newline = this.buffer.indexOf("\n");
      if (newline >= 0) {
        const line = this.buffer.slice(0, newline);
        this.buffer = this.buffer.slice(newline + 1);
        if (line.trim().length > 0) return this.seen(JSON.parse(line) as SessionEvent);
        continue;
      }
      if (this.ended) {
        const rest = this.buffer.trim();
        this.buffer = "";
        this.finished = true;
        return rest.length > 0 ? this.seen(JSON.parse(rest) as SessionEvent) : null;
      }
      const { done, value } = await this.reader.read();
      if (done) {
        this.ended = true;
        this.buffer += this.decoder.decode();
      } else {
        this.buffer += this.decoder.decode(value, { stream: true });
      }
    }
  }

  /** Stops reading and cancels the source stream (and tells `onCancel` when the run was not over). */
  async cancel(reason?: unknown): Promise<void> {
    this.ended = true;
    this.buffer = "";
    const onCancel = this.finished ? undefined : this.onCancel;
    this.onCancel = undefined;
    onCancel?.();
    await this.reader.cancel(reason).catch(() => undefined);
  }

  private seen(event: SessionEvent): SessionEvent {
    if (event.type !== "token") this.finished = true;
    return event;
  }
}
