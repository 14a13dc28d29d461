/**
 * The rate limiter's token bucket survives its Durable Object's eviction: the bucket's state is stored after
 * every take and restored when the object starts again; its alarm deletes the record once the bucket is full.
 */
import { env } from "cloudflare:workers";
import { evictDurableObject, listDurableObjectIds, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createDecoderApp } from "../../functions/decoder/app.ts";
import { decoderDeps } from "../../functions/decoder/wiring.ts";

const LIMIT = { perMinute: 60, burst: 3 }; // one token a second, three at once

describe("RateLimiterObject", () => {
  it("keeps an empty bucket empty across eviction", async () => {
    const stub = env.RATE_LIMITS!.get(env.RATE_LIMITS!.idFromName("key:evicted"));
    const t0 = Date.now();
    for (let i = 0; i < 3; i++) expect((await stub.take(LIMIT)).ok).toBe(true);
    const stored = await runInDurableObject(stub, async (_, state) => ({ bucket: await state.storage.get<any>("bucket"), alarm: await state.storage.getAlarm() }));
    expect(stored.bucket.tokens).toBeLessThan(1);
    expect(stored.alarm).toBeGreaterThanOrEqual(t0 + 2000); // refilled ~3 s after the third take
    expect(stored.alarm).toBeLessThanOrEqual(Date.now() + 3000);

    await evictDurableObject(stub);
    expect(await stub.take(LIMIT)).toEqual({ ok: false, remaining: 0, retryAfterS: 1 }); // not a fresh full bucket

    // Once full again the alarm forgets the key; the next take starts from a full bucket.
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await runInDurableObject(stub, async (_, state) => (await state.storage.list()).size)).toBe(0);
    expect(await stub.take(LIMIT)).toEqual({ ok: true, remaining: 2, retryAfterS: 0 });
  });

  it("answers 429 through the app after the object was evicted mid-burst", async () => {
    const app = createDecoderApp(decoderDeps, { log: () => undefined });
    const limited = { ...env, API_KEYS: "key-evict", RATE_LIMIT_RPM: "60", RATE_LIMIT_BURST: "2" };
    const call = () => app.request("/v1/models", { headers: { authorization: "Bearer key-evict" } }, limited);
    expect([(await call()).status, (await call()).status]).toEqual([200, 200]);
    for (const id of await listDurableObjectIds(env.RATE_LIMITS!)) await evictDurableObject(env.RATE_LIMITS!.get(id)).catch(() => undefined); // not running: nothing to evict
    const refused = await call();
    expect([refused.status, refused.headers.get("retry-after")]).toEqual([429, "1"]);
  });
});
