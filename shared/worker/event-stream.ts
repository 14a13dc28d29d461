/**
 * A generator of session events as an NDJSON byte stream, pulled by its reader: generation advances only as
 * the consumer reads (one event of buffer); a `done` or `error` event ends the stream; cancelling the stream (the client disconnected) aborts the
 * generation and runs the generator's cleanup. `onClose` runs exactly once, whichever way the stream ends.
 */
import { encodeEvent, type SessionEvent } from "../api/events.ts";

/** Wraps `events` as a byte stream; `abort` is signalled on cancel; `onClose` runs once at the end. */
export function eventStream(
  events: AsyncGenerator<SessionEvent, void, void>,
  abort: AbortController,
  onClose: () => void,
): ReadableStream<Uint8Array> {
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    onClose();
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await events.next();
        if (next.done) {
          close();
          controller.close();
          return;
        }
        controller.enqueue(encodeEvent(next.value));
        if (next.value.type !== "token") {
          // done / error is the last event: end now, so the lock is released even if nobody reads on.
          controller.close();
          await events.return(undefined);
          close();
        }
      } catch (err) {
        close();
        try {
          controller.error(err);
        } catch {
          // the stream was cancelled meanwhile
        }
      }
    },
    async cancel() {
      abort.abort();
      try {
        await events.return(undefined);
      } finally {
        close();
      }
    },
  });
}
