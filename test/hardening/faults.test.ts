/**
 * Faults survived, in Node through the decoder app (the same cases run in workerd in test/workers/faults.test.ts):
 * the vision worker failing, KV losing soft tokens, a session flooded or held by a client that never reads, and
 * a request running past its time limit.
 */
import { describe, expect, it } from "vitest";
import { EventReader, type SessionEvent } from "../../shared/api/events.ts";
import { eventStream } from "../../shared/worker/event-stream.ts";
import { endless, type FakeEngine } from "../serving/support/fake-engine.ts";
import { base64, createHarness, post } from "../serving/support/harness.ts";
import { sseEvents } from "../serving/support/sse-client.ts";
import { GOOD_PNG } from "./support.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("the vision worker failing", () => {
  it("is a 503 `unavailable` with retry-after, never a half-written KV entry", async () => {
    const h = await createHarness({ encode: () => () => Promise.reject(new Error("connection reset")) });
    const res = await post(h.app, "/v1/generate", { image: base64(GOOD_PNG), prompt: "caption en" });
    expect([res.status, res.headers.get("retry-after")]).toEqual([503, "1"]);
    // What failed inside ("connection reset") is logged, not shown.
    expect((await res.json<any>()).error).toEqual({ type: "unavailable", message: "the vision service failed; retry later" });

    const broken = await createHarness();
    broken.kv.put = async (key) => {
      if (!/\/\d+$/.test(key)) throw new Error("KV unavailable"); // chunks written, header refused
    };
    const up = await broken.app.request("/v1/images", { method: "POST", headers: { "content-type": "image/png" }, body: GOOD_PNG });
    expect([up.status, (await up.json<any>()).error.type]).toEqual([503, "unavailable"]);
    expect([...broken.kv.values.keys()]).toEqual([]);
  });
});

describe("KV losing an image's soft tokens", () => {
  it("re-encodes the image when the request carries it, else 404 naming the image", async () => {
    const h = await createHarness();
    const body = { image: base64(GOOD_PNG), prompt: "caption en", stream: false, session: "kv" };
    const { image_id } = await (await post(h.app, "/v1/generate", body)).json<any>();
    h.kv.values.delete(`soft/${image_id}/0`); // header kept: the vision worker still says "stored"
    h.evict("kv");
    const lost = await post(h.app, "/v1/generate", { prompt: "caption en", stream: false, session: "kv" });
    expect(await lost.json<any>()).toMatchObject({ error: { type: "not_found", param: "image_id", message: expect.stringContaining(image_id) } });
    expect((await post(h.app, "/v1/generate", body)).status).toBe(200);
    expect((h.engine as FakeEngine).calls.encode).toBe(2);
    expect(h.kv.values.has(`soft/${image_id}/0`)).toBe(true);
  });
});

describe("a session's limits", () => {
  it("more requests at once than the limit are a 429 with retry-after", async () => {
    const h = await createHarness({ fake: { answer: endless, stepDelayMs: 5 }, session: { maxRequests: 2 } });
    await post(h.app, "/v1/generate", { image: base64(GOOD_PNG), prompt: "caption en", stream: false, max_tokens: 1, session: "busy" });
    const first = await post(h.app, "/v1/generate", { prompt: "caption en", session: "busy", max_tokens: 500 });
    const second = post(h.app, "/v1/generate", { prompt: "caption en", session: "busy", max_tokens: 2, stream: false });
    await sleep(20);
    const third = await post(h.app, "/v1/generate", { prompt: "caption en", session: "busy" });
    expect([third.status, third.headers.get("retry-after")]).toEqual([429, "1"]);
    expect((await third.json<any>()).error).toMatchObject({ type: "rate_limited", param: "session" });
    await first.body!.cancel();
    expect((await second).status).toBe(200);
  });

  it("a client that stays connected but never reads loses the session after the idle timeout", async () => {
    const h = await createHarness({ fake: { answer: endless, stepDelayMs: 2 }, session: { idleTimeoutMs: 100 } });
    const stuck = await post(h.app, "/v1/generate", { image: base64(GOOD_PNG), prompt: "caption en", session: "stuck", max_tokens: 500 });
    expect(stuck.status).toBe(200); // and never read
    await sleep(400);
    const info = await (await h.app.request("/v1/sessions/stuck")).json<any>();
    expect(info).toMatchObject({ busy: false, last_run: { finish_reason: "aborted" } });
    const next = await post(h.app, "/v1/generate", { prompt: "caption en", session: "stuck", max_tokens: 2, stream: false });
    expect(next.status).toBe(200);
    await stuck.body!.cancel();
  });

  it("a request past the time limit ends: an SSE timeout error, or a 504 without streaming", async () => {
    const h = await createHarness({ fake: { answer: endless, stepDelayMs: 5 }, session: { requestTimeoutMs: 200 } });
    const res = await post(h.app, "/v1/generate", { image: base64(GOOD_PNG), prompt: "caption en", max_tokens: 500, session: "slow" });
    const events = [];
    for await (const e of sseEvents(res)) events.push(e);
    expect(events.at(-1)).toMatchObject({ event: "error", data: expect.stringContaining('"type":"timeout"') });
    expect(events.length).toBeLessThan(100);
    const json = await post(h.app, "/v1/generate", { prompt: "caption en", max_tokens: 500, stream: false, session: "slow" });
    expect([json.status, (await json.json<any>()).error.type]).toEqual([504, "timeout"]);
  });
});

describe("eventStream time limits", () => {
  async function* forever(): AsyncGenerator<SessionEvent, void, void> {
    for (let i = 0; ; i++) {
      await sleep(1);
      yield { type: "token", token: { index: i, id: 1, text: "x", logprob: 0 } };
    }
  }

  it("ends an unread stream after idleMs and a read one at its deadline, releasing once", async () => {
    let released = 0;
    const abort = new AbortController();
    const idle = eventStream(forever(), abort, () => released++, { idleMs: 30 });
    await sleep(100);
    expect([released, abort.signal.aborted]).toEqual([1, true]);
    const seen: string[] = [];
    const reader = new EventReader(idle);
    for (let e = await reader.next(); e; e = await reader.next()) seen.push(e.type === "error" ? e.error.type : e.type);
    expect(seen).toEqual(["token", "timeout"]);

    const late = new EventReader(eventStream(forever(), new AbortController(), () => released++, { deadlineMs: 50 }));
    let last: SessionEvent | null = null;
    for (let e = await late.next(); e; e = await late.next()) last = e;
    expect(last).toMatchObject({ type: "error", error: { type: "timeout" } });
    expect(released).toBe(2);
  });
});
