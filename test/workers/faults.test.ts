/**
 * Faults, in workerd with real Durable Objects and KV: a session evicted mid-generation, soft tokens gone from
 * KV, the vision worker failing, a client that disconnects or stops reading, and a request that runs too long.
 * The decoder app runs over the real session classes (fake engines) and, where images are encoded, the real
 * vision code with the shapes model.
 */
import { env } from "cloudflare:workers";
import { abortAllDurableObjects, evictDurableObject, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { EventReader } from "../../shared/api/events.ts";
import { SoftTokenStore } from "../../shared/worker/soft-token-store.ts";
import { createDecoderApp } from "../../functions/decoder/app.ts";
import type { DecoderDeps } from "../../functions/decoder/deps.ts";
import { decoderDeps } from "../../functions/decoder/wiring.ts";
import { visionDeps } from "../../functions/vision/deps.ts";
import { encodeReply } from "../../functions/vision/encode.ts";
import { greedy, readTokens, storeFakeSoftTokens, waitIdle } from "./support.ts";

const IMAGE = `img_${"2".repeat(64)}`;

beforeAll(async () => {
  await storeFakeSoftTokens(env.SOFT_TOKENS, IMAGE);
});

/** The decoder app over FAKE_SESSIONS and the real vision code, with `patch` applied to its deps. */
function appWith(patch: (d: DecoderDeps) => Partial<DecoderDeps> = () => ({})) {
  return createDecoderApp((e) => {
    const d: DecoderDeps = {
      ...decoderDeps(e),
      encodeImage: (bytes, options) => encodeReply(visionDeps(e), bytes, options),
      session: (name) => env.FAKE_SESSIONS.get(env.FAKE_SESSIONS.idFromName(name)),
    };
    return { ...d, ...patch(d) };
  });
}

const post = (app: ReturnType<typeof appWith>, body: unknown) =>
  app.request("/v1/generate", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }, env);

async function kvKeys(prefix: string): Promise<string[]> {
  return (await env.SOFT_TOKENS.list({ prefix })).keys.map((k) => k.name);
}


describe("a session evicted mid-generation", () => {
  it("ends the client's stream with an error event; the next request works from stored state", async () => {
    const res = await SELF.fetch("https://decoder.test/v1/generate", {
      method: "POST",
      headers: { "content-type": "application/json", "x-session-id": "evicted-mid" },
      body: JSON.stringify({ image_id: IMAGE, prompt: "caption en", max_tokens: 500 }),
    });
    const { reader, text } = await readTokens(res, 3);
    await abortAllDurableObjects(); // the object's instance dies while it streams; its storage stays
    let rest = text;
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    expect(rest).toMatch(/event: error\ndata: \{"error":\{"type":"unavailable","message":"[^"]+"\}\}\n\n$/);
    expect(rest).not.toContain("event: done");

    const next = await SELF.fetch("https://decoder.test/v1/generate", {
      method: "POST",
      headers: { "content-type": "application/json", "x-session-id": "evicted-mid" },
      body: JSON.stringify({ prompt: "caption en", max_tokens: 3, stream: false }), // no image: the stored record's
    });
    expect(next.status).toBe(200);
    expect(await next.json<any>()).toMatchObject({ finish_reason: "length", image_id: IMAGE, session: "evicted-mid" });
  });
});

describe("soft tokens missing from KV", () => {
  it("re-encodes when the request carries the image, else answers 404 with a clear message", async () => {
    const app = appWith();
    const image = env.EVAL_IMAGE_000;
    const first = await post(app, { image, prompt: "caption en", stream: false, session: "kv-lost" });
    expect(first.status).toBe(200);
    const { image_id } = await first.json<any>();
    const stub = env.FAKE_SESSIONS.get(env.FAKE_SESSIONS.idFromName("kv-lost"));

    for (const key of await kvKeys(`soft/${image_id}`)) await env.SOFT_TOKENS.delete(key);
    await evictDurableObject(stub); // the session's memory held the soft tokens too
    const lost = await post(app, { prompt: "caption en", stream: false, session: "kv-lost" });
    expect(lost.status).toBe(404);
    expect((await lost.json<any>()).error).toMatchObject({ type: "not_found", param: "image_id", message: expect.stringMatching(/send the image/) });

    const again = await post(app, { image, prompt: "caption en", stream: false, session: "kv-lost" });
    expect([again.status, (await again.json<any>()).image_id]).toEqual([200, image_id]);

    // Only the tensor is gone, the header stays: the vision worker says "stored", the session finds nothing,
    // and the worker encodes the image it has at hand once more.
    await env.SOFT_TOKENS.delete(`soft/${image_id}/0`);
    await evictDurableObject(stub);
    const healed = await post(app, { image, prompt: "caption en", stream: false, session: "kv-lost" });
    expect(healed.status).toBe(200);
    expect(await kvKeys(`soft/${image_id}`)).toEqual([`soft/${image_id}`, `soft/${image_id}/0`]);
  });
});

describe("the vision worker failing", () => {
  it("is a 503 with a clear error, for inline images and uploads", async () => {
    const thrown = appWith(() => ({ encodeImage: () => Promise.reject(new Error("vision isolate exceeded its memory")) }));
    const res = await post(thrown, { image: env.EVAL_IMAGE_000, prompt: "caption en" });
    expect([res.status, res.headers.get("retry-after")]).toEqual([503, "1"]);
    // The cause ("exceeded its memory") is logged with the request id, not sent.
    expect((await res.json<any>()).error).toEqual({ type: "unavailable", message: "the vision service failed; retry later" });
    const upload = await thrown.request("/v1/images", { method: "POST", headers: { "content-type": "image/png" }, body: "\x89PNG" }, env);
    expect(upload.status).toBe(503);

    const failed = appWith(() => ({
      encodeImage: async () => ({ ok: false, error: { status: 500, type: "server_error", message: "model file corrupt" } }),
    }));
    const res2 = await post(failed, { image: env.EVAL_IMAGE_000, prompt: "caption en" });
    expect([res2.status, (await res2.json<any>()).error.type]).toEqual([503, "unavailable"]);
  });

  it("leaves no half-written KV entry when a write fails", async () => {
    const kv = env.SOFT_TOKENS;
    const failing = {
      get: kv.get.bind(kv),
      delete: kv.delete.bind(kv),
      put: (key: string, value: ArrayBuffer | string, options?: KVNamespacePutOptions) =>
        /\/\d+$/.test(key) ? kv.put(key, value, options) : Promise.reject(new Error("KV write failed")),
    } as unknown as KVNamespace;
    const deps = { ...visionDeps(env), store: new SoftTokenStore(failing, { ttlSeconds: 3600 }) };
    const bytes = Uint8Array.from(atob(env.EVAL_IMAGE_001), (c) => c.charCodeAt(0));
    const reply = await encodeReply(deps, bytes, { owner: "f".repeat(32) });
    expect(reply).toMatchObject({ ok: false, error: { status: 500, message: "KV write failed" } });
    const ok = await encodeReply(visionDeps(env), bytes, { owner: "f".repeat(32) }); // same id, written properly
    if (!ok.ok) throw new Error(ok.error.message);
    expect(ok.image.cached).toBe(false); // nothing of the failed attempt was left behind
  });
});

describe("clients that go away or stop reading", () => {
  it("a disconnect stops the generation and the session takes the next request", async () => {
    const headers = { "content-type": "application/json", "x-session-id": "gone-http" };
    const res = await SELF.fetch("https://decoder.test/v1/generate", {
      method: "POST",
      headers,
      body: JSON.stringify({ image_id: IMAGE, prompt: "caption en", max_tokens: 500 }),
    });
    const { reader } = await readTokens(res, 3);
    await reader.cancel();
    const info = await waitIdle(env.SLOW_SESSIONS.get(env.SLOW_SESSIONS.idFromName("gone-http")));
    expect(info).toMatchObject({ busy: false, last_run: { finish_reason: "aborted" } });
    const next = await SELF.fetch("https://decoder.test/v1/generate", {
      method: "POST",
      headers,
      body: JSON.stringify({ prompt: "caption en", max_tokens: 2, stream: false }),
    });
    expect([next.status, (await next.json<any>()).finish_reason]).toEqual([200, "length"]);
  });

  it("a stream nobody reads is ended after the idle timeout, freeing the session", async () => {
    const stub = env.QUICK_SESSIONS.get(env.QUICK_SESSIONS.idFromName("idle"));
    const reply = await stub.generate({ session: "idle", prompt: "caption en", imageId: IMAGE, sampling: greedy(500) });
    if (!reply.ok) throw new Error(reply.error.message);
    const reader = new EventReader(reply.stream);
    expect((await reader.next())?.type).toBe("token");
    await new Promise((r) => setTimeout(r, 800)); // idle: 300 ms
    const info = await stub.describe();
    expect(info).toMatchObject({ busy: false, last_run: { finish_reason: "aborted" } });
    expect(info.last_run!.completion_tokens).toBeLessThan(20);
    const events = [];
    for (let e = await reader.next(); e; e = await reader.next()) events.push(e);
    expect(events.at(-1)).toMatchObject({ type: "error", error: { type: "timeout" } });
  });

  it("a request past its time limit ends with a timeout error; more than two at once are refused", async () => {
    const stub = env.QUICK_SESSIONS.get(env.QUICK_SESSIONS.idFromName("slowpoke"));
    const start = () => stub.generate({ session: "slowpoke", prompt: "caption en", imageId: IMAGE, sampling: greedy(1000) });
    const first = await start();
    if (!first.ok) throw new Error(first.error.message);
    const second = start(); // waits for the lock
    await new Promise((r) => setTimeout(r, 20));
    expect(await start()).toMatchObject({ ok: false, error: { status: 429, type: "rate_limited", retry_after_s: 1 } });
    const reader = new EventReader(first.stream);
    const t0 = Date.now();
    let last;
    for (let e = await reader.next(); e; e = await reader.next()) last = e;
    expect(last).toMatchObject({ type: "error", error: { type: "timeout" } });
    expect(Date.now() - t0).toBeLessThan(3000); // 1.5 s limit, not 1000 tokens × 10 ms
    const next = await second;
    expect(next.ok).toBe(true);
    if (next.ok) await next.stream.cancel();
  });
});
