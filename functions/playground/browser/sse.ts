/**
 * Server-Sent Events read from a `fetch` body (EventSource cannot POST), per the WHATWG parsing rules: lines end
 * with CRLF, LF or CR; a blank line dispatches the event; `data` lines join with LF; lines starting with ":" are
 * comments; one space after the colon is dropped.
 */

/** Calls `onEvent(name, data)` for each event of `body` (name "message" when unnamed); cancels the body at the end. */
export async function readEvents(body: ReadableStream<Uint8Array>, onEvent: (name: string, data: string) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let name = "";
  let data: string[] = [];
  const line = (text: string): void => {
    if (text === "") {
      if (data.length > 0) onEvent(name || "message", data.join("\n"));
      name = "";
      data = [];
      return;
    }
    if (text.charAt(0) === ":") return;
    const colon = text.indexOf(":");
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? "" : text.slice(colon + 1);
    if (value.charAt(0) === " ") value = value.slice(1);
    if (field === "event") name = value;
    else if (field === "data") data.push(value);
  };
  try {
    for (;;) {
      const chunk = await reader.read();
      buffer += chunk.done ? decoder.decode() : decoder.decode(chunk.value, { stream: true });
      let match: RegExpExecArray | null;
      while ((match = /\r\n|\r|\n/.exec(buffer)) !== null) {
        if (match[0] === "\r" && match.index === buffer.length - 1 && !chunk.done) break; // maybe half a CRLF
        line(buffer.slice(0, match.index));
        buffer = buffer.slice(match.index + match[0].length);
      }
      if (chunk.done) return;
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
}
