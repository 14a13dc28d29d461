/** Reading an SSE response in tests: the raw bytes (for exact framing) and the events a standard parser sees. */
import { createParser, type EventSourceMessage } from "eventsource-parser";

/** The whole body, and its events as eventsource-parser parses them. */
export async function readSse(res: Response): Promise<{ raw: string; events: EventSourceMessage[] }> {
  const raw = await res.text();
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (e) => events.push(e) });
  parser.feed(raw);
  return { raw, events };
}

/** Reads events one at a time from a live body, for tests that stop early. */
export function sseEvents(res: Response): AsyncGenerator<EventSourceMessage> & { cancel(): Promise<void> } {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const queue: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (e) => queue.push(e) });
  async function* run(): AsyncGenerator<EventSourceMessage> {
    for (;;) {
      while (queue.length > 0) yield queue.shift()!;
      const { done, value } = await reader.read();
      if (done) return;
      parser.feed(decoder.decode(value, { stream: true }));
    }
  }
  const gen = run();
  return Object.assign(gen, { cancel: () => reader.cancel() });
}
