/**
 * Session Durable Objects in workerd with fake engines: requests to one session are serialised, sessions run
 * independently, cancelling the RPC stream (a client that went away) stops the decode loop, idle sessions expire.
 */
import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { EventReader } from "../../shared/api/events.ts";
import { collect, greedy, readTokens, storeFakeSoftTokens, waitIdle } from "./support.ts";

const IMAGE = `img_${"1".repeat(64)}`;

beforeAll(async () => {
  await storeFakeSoftTokens(env.SOFT_TOKENS, IMAGE);
});

describe("session Durable Objects", () => {
  it("serialise requests to one session", async () => {
    const stub = env.SLOW_SESSIONS.get(env.SLOW_SESSIONS.idFromName("serial"));
    const t0 = Date.now();
    const start = () => stub.generate({ session: "serial", prompt: "caption en", imageId: IMAGE, sampling: greedy(20) });
    const a = start();
    await new Promise((r) => setTimeout(r, 5));
    const b = start();
    const replyA = await a;
    const tA = Date.now() - t0;
    const readA = collect(replyA); // A's stream is read as it comes (generation follows the reader)
    await new Promise((r) => setTimeout(r, 20));
    expect((await stub.describe())).toMatchObject({ busy: true, queued: 1 });
    const replyB = await b; // only once A's 20 tokens (10 ms each) have been generated
    const tB = Date.now() - t0;
    expect(tB - tA).toBeGreaterThanOrEqual(150);
    const [ra, rb] = await Promise.all([readA, collect(replyB)]);
    expect([ra.tokens.length, rb.tokens.length]).toEqual([20, 20]);
  });

  it("run different sessions independently", async () => {
    const start = (name: string) => {
      const stub = env.SLOW_SESSIONS.get(env.SLOW_SESSIONS.idFromName(name));
      return stub.generate({ session: name, prompt: "caption en", imageId: IMAGE, sampling: greedy(20) });
    };
    // Both replies arrive while neither stream is read. Had y waited for x's lock, it could not: x's unread stream
    // holds it (generation follows the reader).
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("sessions waited for each other")), 5000));
    const [x, y] = await Promise.race([Promise.all([start("ind-x"), start("ind-y")]), timeout]);
    const [rx, ry] = await Promise.all([collect(x), collect(y)]);
    expect([rx.done.finish_reason, ry.done.finish_reason]).toEqual(["length", "length"]);
  });

  it("stop decoding when the stream is cancelled, and take the next request", async () => {
    const stub = env.SLOW_SESSIONS.get(env.SLOW_SESSIONS.idFromName("cancel"));
    const reply = await stub.generate({ session: "cancel", prompt: "caption en", imageId: IMAGE, sampling: greedy(500) });
    if (!reply.ok) throw new Error(reply.error.message);
    const reader = new EventReader(reply.stream);
    for (let i = 0; i < 3; i++) expect((await reader.next())?.type).toBe("token");
    await reader.cancel();
    const info = await waitIdle(stub);
    expect(info).toMatchObject({ busy: false, last_run: { finish_reason: "aborted" } });
    expect(info.last_run!.completion_tokens).toBeLessThan(50);
    const next = await collect(await stub.generate({ session: "cancel", prompt: "caption en", sampling: greedy(2) }));
    expect(next.done.finish_reason).toBe("length");
  });

  it("expire when idle: the alarm deletes what the session stored", async () => {
    const stub = env.FAKE_SESSIONS.get(env.FAKE_SESSIONS.idFromName("expire"));
    const r = await collect(await stub.generate({ session: "expire", prompt: "caption en", imageId: IMAGE, sampling: greedy() }));
    expect(r.done.text).toBe("a green circle");
    expect((await stub.describe()).record).not.toBeNull();
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await stub.describe())).toMatchObject({ record: null, memory: null });
    const reply = await stub.generate({ session: "expire", prompt: "caption en", sampling: greedy() });
    expect(reply).toMatchObject({ ok: false, error: { status: 400, param: "image" } });
  });
});

describe("the decoder app over session objects", () => {
  it("stops the decode loop when the HTTP response body is cancelled", async () => {
    const res = await SELF.fetch("https://decoder.test/v1/generate", {
      method: "POST",
      headers: { "content-type": "application/json", "x-session-id": "http-cancel" },
      body: JSON.stringify({ image_id: IMAGE, prompt: "caption en", max_tokens: 500 }),
    });
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const { reader } = await readTokens(res, 3);
    await reader.cancel();
    const info = await waitIdle(env.SLOW_SESSIONS.get(env.SLOW_SESSIONS.idFromName("http-cancel")));
    expect(info).toMatchObject({ busy: false, last_run: { finish_reason: "aborted" } });
    expect(info.last_run!.completion_tokens).toBeLessThan(50);
  });
});
