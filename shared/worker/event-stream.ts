/**
 * A generator of session events as an NDJSON byte stream, pulled by its reader: generation advances only as
 * the consumer reads (one event of buffer); a `done` or `error` event ends the stream; cancelling the stream (the
 * client disconnected) aborts the generation and runs the generator's cleanup. `onClose` runs exactly once,
 * whichever way the stream ends.
 *
 * Two clocks bound how long a stream may keep its session: `deadlineMs` (the whole request) and `idleMs` (a
 * reader that takes nothing, e.g. a client that stays connected but never reads). Either ends the stream with
 * an `error` event of type `timeout`, aborts the generation and releases the session. Signalling `abort` from
 * outside (the caller learned that the client went away) ends it the same way, with type `cancelled`.
 */
import { encodeEvent, type SessionEvent } from "../api/events.ts";
import { statusOfType, type ErrorData } from "../errors.ts";

/** Time limits of one stream, in milliseconds (absent = none). */
export interface StreamTimeouts {
  /** From now until the stream must have ended. */
  readonly deadlineMs?: number;
  /** Longest wait for the reader to ask for the next event. */
  readonly idleMs?: number;
}

/** Wraps `events` as a byte stream; `abort` is signalled on cancel or timeout; `onClose` runs once at the end. */
export function eventStream(
  events: AsyncGenerator<SessionEvent, void, void>,
  abort: AbortController,
  onClose: () => void,
  timeouts: StreamTimeouts = {},
): ReadableStream<Uint8Array> {
  let closed = false;
  let ended = false; // no more events will be enqueued
  let pulling = false;
  let stopped: ErrorData | null = null;
  let idleTimer: ReturnType<typeof setTimeout> | undefined;
  let deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  let ctrl!: ReadableStreamDefaultController<Uint8Array>;

  const close = (): void => {
    clearTimeout(idleTimer);
    clearTimeout(deadlineTimer);
    if (closed) return;
    closed = true;
    onClose();
  };
  /** Ends the stream with the stop's error event (now, or when a pull in progress returns). */
  const finishStopped = async (): Promise<void> => {
    if (ended) return;
    ended = true;
    try {
      ctrl.enqueue(encodeEvent({ type: "error", error: stopped! }));
      ctrl.close();
    } catch {
      // cancelled meanwhile
    }
    try {
      await events.return(undefined);
    } finally {
      close();
    }
  };
  const stop = (type: "timeout" | "cancelled", message: string): void => {
    if (ended || stopped !== null) return;
    stopped = { status: statusOfType(type), type, message };
    abort.abort();
    if (!pulling) void finishStopped();
  };
  const timeOut = (message: string): void => stop("timeout", message);
  abort.signal.addEventListener("abort", () => stop("cancelled", "the client went away; the generation was stopped"), { once: true });
  const armIdle = (): void => {
    if (timeouts.idleMs === undefined || ended) return;
    idleTimer = setTimeout(() => timeOut(`the client read nothing for ${timeouts.idleMs} ms; the stream was ended`), timeouts.idleMs);
  };

  return new ReadableStream<Uint8Array>({
    start(controller) {
      ctrl = controller;
      if (timeouts.deadlineMs !== undefined) {
        deadlineTimer = setTimeout(() => timeOut(`the request took longer than ${timeouts.deadlineMs} ms; the generation was stopped`), timeouts.deadlineMs);
      }
    },
    async pull(controller) {
      clearTimeout(idleTimer);
      if (ended) return;
      pulling = true;
      try {
        const next = await events.next();
        pulling = false;
        if (stopped !== null) return finishStopped();
        if (next.done) {
          ended = true;
          close();
          controller.close();
          return;
        }
        controller.enqueue(encodeEvent(next.value));
        if (next.value.type !== "token") {
          // done / error is the last event: end now, so the lock is released even if nobody reads on.
          ended = true;
          controller.close();
          await events.return(undefined);
          close();
          return;
        }
        armIdle();
      } catch (err) {
        pulling = false;
        ended = true;
        close();
        try {
          controller.error(err);
        } catch {
          // the stream was cancelled meanwhile
        }
      }
    },
    async cancel() {
      ended = true;
      abort.abort();
      try {
        await events.return(undefined);
      } finally {
        close();
      }
    },
  });
}
