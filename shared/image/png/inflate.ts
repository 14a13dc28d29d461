/**
 * Inflating a PNG's zlib streams with the platform's zlib (`DecompressionStream("deflate")`, native in workerd
 * and Node), the inflater Pillow uses too, so a stream that zlib refuses (a stored block whose NLEN is not the
 * complement of LEN, a bad Adler-32, a truncated stream, junk after the end) is refused here, and a stream zlib
 * accepts is decoded exactly as zlib decodes it.
 *
 * The output goes to a consumer as it is produced, and the consumer enforces the budget (it throws to stop), so
 * a stream that would inflate to gigabytes costs at most its budget. The input is written in slices of
 * {@link INPUT_SLICE_BYTES}: deflate expands at most ~1032× (RFC 1951 §3.2.5: a length-258 copy in as little as
 * 2 bits), so one slice never yields more than ~4 MB at once, whatever the stream holds.
 */

/** Compressed bytes per write into the inflater (bounds the output of one write to ~4 MB). */
export const INPUT_SLICE_BYTES = 4096;

/** zlib refused the stream (its message says why). */
export class InflateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InflateError";
  }
}

/**
 * Inflates the zlib stream made of `parts` (concatenated) to its end, passing each piece of output to
 * `consume`; an error thrown by `consume` stops the inflate and propagates.
 *
 * @throws InflateError when zlib reports the stream corrupt or it ends early.
 */
export async function inflateTo(parts: readonly Uint8Array[], consume: (bytes: Uint8Array) => void): Promise<void> {
  const stream = new DecompressionStream("deflate");
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  // Both sides' `closed` promises reject when zlib errors; that is reported through `read()` below.
  writer.closed.catch(() => undefined);
  reader.closed.catch(() => undefined);
  let stopped = false;
  const writing = (async () => {
    for (const part of parts) {
      for (let o = 0; o < part.length && !stopped; o += INPUT_SLICE_BYTES) {
        await writer.write(part.subarray(o, o + INPUT_SLICE_BYTES) as Uint8Array<ArrayBuffer>);
      }
    }
    if (!stopped) await writer.close();
  })().catch(() => undefined); // a write fails when zlib errors or the read side is cancelled: the reader reports it
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (err) {
        throw new InflateError(err instanceof Error ? err.message : String(err));
      }
      if (chunk.done) return;
      consume(chunk.value);
    }
  } finally {
    stopped = true;
    await reader.cancel().catch(() => undefined);
    await writer.abort().catch(() => undefined);
    await writing;
  }
}
