/**
 * Presents a session's event stream in an API's wire format: an SSE response (native or OpenAI framing) or,
 * without streaming, one collected result. Cancelling the response body (the client disconnected) cancels the
 * session's stream, which aborts the decode loop in the Durable Object.
 */
import type { DoneEvent, EventReader, TokenEvent } from "../../shared/api/events.ts";
import { SSE_HEADERS } from "../../shared/api/sse.ts";
import { errorFromData, publicError, ServiceError, statusOfType, type ErrorData } from "../../shared/errors.ts";

/** How one API frames the events of a stream. */
export interface StreamFormat {
  /** Frame sent before the first token (OpenAI's role chunk). */
  start?(): string;
  /** A token's frame, or "" to send nothing for it. */
  token(token: TokenEvent): string;
  /** The final frame(s), terminator included. */
  done(done: DoneEvent): string;
  /** An error after the stream started (already made public: no internals, bounded). */
  error(error: ErrorData): string;
}

/** The session's stream broke off (its Durable Object was evicted, restarted or failed): retrying is safe. */
const ENDED_EARLY = {
  status: statusOfType("unavailable"),
  type: "unavailable",
  message: "the session stopped before the generation ended (it was restarted or evicted); send the request again",
} as const;


/** An SSE response that frames the session's events with `format`; `requestId` goes into 5xx messages. */
export function sseResponse(reader: EventReader, format: StreamFormat, headers: Record<string, string>, requestId?: string): Response {
  const encoder = new TextEncoder();
  // A session's error event as a client may see it (5xx internals replaced, message bounded).
  const error = (e: ErrorData): string => format.error(publicError(e, requestId));
  let started = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!started) {
        started = true;
        const opening = format.start?.();
        if (opening) return controller.enqueue(encoder.encode(opening));
      }
      for (;;) {
        let frame: string;
        let last = false;
        try {
          const event = await reader.next();
          if (event === null) [frame, last] = [error(ENDED_EARLY), true];
          else if (event.type === "token") frame = format.token(event.token);
          else if (event.type === "done") [frame, last] = [format.done(event.done), true];
          else [frame, last] = [error(event.error), true];
        } catch (err) {
          console.error(`reading session events (request ${requestId ?? "?"}):`, err);
          [frame, last] = [error(ENDED_EARLY), true];
        }
        if (frame) controller.enqueue(encoder.encode(frame));
        if (last) {
          controller.close();
          await reader.cancel();
          return;
        }
        if (frame) return;
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return new Response(body, { headers: { ...SSE_HEADERS, ...headers } });
}

/** Reads a whole run: its tokens and final result. An error event is thrown as the error it describes. */
export async function collect(reader: EventReader): Promise<{ tokens: TokenEvent[]; done: DoneEvent }> {
  const tokens: TokenEvent[] = [];
  for (;;) {
    const event = await reader.next().catch((err: unknown) => {
      console.error("reading session events:", err);
      return null;
    });
    if (event === null) throw new ServiceError(ENDED_EARLY.type, ENDED_EARLY.message);
    if (event.type === "token") tokens.push(event.token);
    else if (event.type === "done") {
      await reader.cancel();
      return { tokens, done: event.done };
    } else throw errorFromData(event.error);
  }
}
