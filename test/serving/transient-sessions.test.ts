/**
 * Only named sessions persist: a request without a session id runs in a transient session (a fresh object no
 * name reaches) that stores no record and holds no cache once it is done; a named session stores its record.
 * The same in workerd, with Durable Object storage and alarms: test/workers/session-storage.test.ts.
 */
import { describe, expect, it } from "vitest";
import { createHarness, evalImage, base64, post } from "./support/harness.ts";
import { readSse } from "./support/sse-client.ts";

const IMG = base64(evalImage("img_000_96x96.png"));

describe("unnamed requests", () => {
  it("leave no stored record and free their cache, streamed or not, native or chat", async () => {
    const h = await createHarness();
    const native = await post(h.app, "/v1/generate", { image: IMG, prompt: "caption en", stream: false });
    expect([native.status, native.headers.get("x-session-id"), (await native.json<any>()).session]).toEqual([200, null, null]);
    const streamed = await post(h.app, "/v1/generate", { image: IMG, prompt: "caption en" });
    const { events } = await readSse(streamed);
    expect(events.at(-1)!.event).toBe("done");
    expect(JSON.parse(events.at(-1)!.data).session).toBeNull();
    const chat = await post(h.app, "/v1/chat/completions", {
      model: "paligemma-shapes",
      messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: `data:image/png;base64,${IMG}` } }, { type: "text", text: "caption en" }] }],
    });
    const chatBody = await chat.text();
    expect([chat.status, chat.headers.get("x-session-id")], chatBody).toEqual([200, null]);

    expect(h.stored.size).toBe(0);
    expect(h.sessions.size).toBe(0);
    expect(h.transient.length).toBe(3);
    for (const t of h.transient) expect(t.describe()).toMatchObject({ session: null, record: null, memory: null, busy: false });
  });

  it("without an image are refused as before (there is no session to remember one)", async () => {
    const h = await createHarness();
    const res = await post(h.app, "/v1/generate", { prompt: "caption en", stream: false });
    expect([res.status, (await res.json<any>()).error.param]).toEqual([400, "image"]);
    expect(h.stored.size).toBe(0);
  });
});

describe("named sessions", () => {
  it("store their record and are continued by name", async () => {
    const h = await createHarness();
    const first = await post(h.app, "/v1/generate", { image: IMG, prompt: "caption en", stream: false }, { "x-session-id": "kept" });
    expect(first.headers.get("x-session-id")).toBe("kept");
    const { image_id, session } = await first.json<any>();
    expect(session).toBe("kept");
    expect(h.stored.get("kept")).toMatchObject({ v: 1, model: "paligemma-shapes", image_id });
    const next = await post(h.app, "/v1/generate", { prompt: "caption en", stream: false, session: "kept" });
    expect((await next.json<any>()).usage.prefix_cache).toMatchObject({ soft_tokens: "hit", kv: "hit" });
    expect(h.transient.length).toBe(0);
  });
});
