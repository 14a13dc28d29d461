/** The session lock and the NDJSON event stream: ordering, cancel → abort, the lock released exactly once. */
import { describe, expect, it } from "vitest";
import { EventReader, type SessionEvent } from "../../shared/api/events.ts";
import { eventStream } from "../../shared/worker/event-stream.ts";
import { SerialQueue } from "../../shared/worker/serial-queue.ts";

const token = (index: number): SessionEvent => ({ type: "token", token: { index, id: index, text: `t${index}`, logprob: 0 } });

describe("SerialQueue", () => {
  it("runs holders one at a time, first in first out", async () => {
    const q = new SerialQueue();
    const order: string[] = [];
    const job = async (name: string, ms: number) => {
      const release = await q.acquire();
      order.push(`${name}+`);
      await new Promise((r) => setTimeout(r, ms));
      order.push(`${name}-`);
      release();
      release(); // idempotent
    };
    await Promise.all([job("a", 20), job("b", 1), job("c", 1)]);
    expect(order).toEqual(["a+", "a-", "b+", "b-", "c+", "c-"]);
    expect(q.busy).toBe(false);
  });
});

describe("eventStream / EventReader", () => {
  it("carries events in order and closes once after done", async () => {
    let closed = 0;
    async function* gen(): AsyncGenerator<SessionEvent, void, void> {
      yield token(0);
      yield token(1);
      yield { type: "error", error: { status: 500, type: "server_error", message: "x" } };
      yield token(2); // never read: error ends the stream
    }
    const reader = new EventReader(eventStream(gen(), new AbortController(), () => closed++));
    const seen: string[] = [];
    for (let e = await reader.next(); e; e = await reader.next()) seen.push(e.type);
    expect(seen).toEqual(["token", "token", "error"]);
    expect(closed).toBe(1);
  });

  it("cancel aborts the generation, runs its cleanup and releases once", async () => {
    const abort = new AbortController();
    let closed = 0;
    let cleaned = false;
    async function* gen(): AsyncGenerator<SessionEvent, void, void> {
      try {
        for (let i = 0; ; i++) {
          if (abort.signal.aborted) return;
          await new Promise((r) => setTimeout(r, 2));
          yield token(i);
        }
      } finally {
        cleaned = true;
      }
    }
    const reader = new EventReader(eventStream(gen(), abort, () => closed++));
    expect((await reader.next())?.type).toBe("token");
    await reader.cancel();
    expect(await reader.next()).toBeNull();
    expect(abort.signal.aborted).toBe(true);
    expect(cleaned).toBe(true);
    expect(closed).toBe(1);
  });

  it("parses events split across chunks", async () => {
    const line = `${JSON.stringify(token(7))}\n`;
    const bytes = new TextEncoder().encode(line + line);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < bytes.length; i += 5) c.enqueue(bytes.subarray(i, i + 5));
        c.close();
      },
    });
    const reader = new EventReader(stream);
    expect(await reader.next()).toEqual(token(7));
    expect(await reader.next()).toEqual(token(7));
    expect(await reader.next()).toBeNull();
  });
});
