/**
 * Server-Sent Events framing (WHATWG HTML, "Server-sent events", §9.2.5 interpreting an event stream).
 *
 * A frame is an optional `event:` line, one `data:` line per line of the payload, and a blank line:
 *
 *   event: token\n
 *   data: {"index":0,"id":326,"text":"a","logprob":-0.01}\n
 *   \n
 *
 * JSON payloads never contain a raw newline, so they always fit one `data:` line. Both APIs use these bytes:
 * the native API names its events (`token`, `done`, `error`); OpenAI's stream uses unnamed `data:` frames and
 * ends with `data: [DONE]`.
 */

/** Response headers for an event stream (no caching, no proxy buffering). */
export const SSE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  "x-accel-buffering": "no",
});

/**
 * One SSE frame. `data` is split on line breaks into several `data:` lines, as the spec requires; `event`
 * must be a single line.
 */
export function sseFrame(data: string, event?: string): string {
  if (event !== undefined && /[\r\n]/.test(event)) throw new RangeError("an SSE event name must be one line");
  const head = event === undefined ? "" : `event: ${event}\n`;
  const lines = data.split(/\r\n|\r|\n/);
  return `${head}${lines.map((line) => `data: ${line}`).join("\n")}\n\n`;
}

/** An SSE frame whose payload is `value` as compact JSON. */
export function sseJson(value: unknown, event?: string): string {
  return sseFrame(JSON.stringify(value), event);
}

/** OpenAI's end-of-stream sentinel. */
export const SSE_DONE = "data: [DONE]\n\n";
