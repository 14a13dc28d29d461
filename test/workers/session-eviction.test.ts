/**
 * The real session Durable Object with the real default model in workerd: an evicted session rebuilds its
 * state from storage (image id + prompt ids) and gives the same answer; the prefix cache works across requests.
 */
import { env } from "cloudflare:workers";
import { evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { encodeReply } from "../../functions/vision/encode.ts";
import { visionDeps } from "../../functions/vision/deps.ts";
import { collect, fromBase64, greedy } from "./support.ts";

describe("SessionObject with the shapes model", () => {
  it("answers, survives eviction with the same answer, and then hits its prefix cache", async () => {
    const encoded = await encodeReply(visionDeps(env), fromBase64(env.EVAL_IMAGE_000));
    if (!encoded.ok) throw new Error(encoded.error.message);
    const imageId = encoded.image.image_id;
    const stub = env.SESSIONS.get(env.SESSIONS.idFromName("evict-me"));

    const first = await collect(await stub.generate({ session: "evict-me", prompt: "caption en", imageId, sampling: greedy() }));
    expect(first.done.text).toBe("a green circle"); // eval/cases.json, img_000 "caption en"
    expect(first.done.ids).toEqual([326, 393, 369, 1]);
    expect(first.tokens.map((t) => t.id)).toEqual([326, 393, 369, 1]);
    expect(first.done.usage.prefix_cache).toEqual({ soft_tokens: "miss", kv: "miss", cached_tokens: 0 });

    const before = await stub.describe();
    expect(before.memory).toEqual({ image_id: imageId, prefix_tokens: 40, cache_bytes: expect.any(Number) });
    expect(before.memory!.cache_bytes).toBeGreaterThan(0); // the session holds its own KV cache
    expect(before.record).toMatchObject({ v: 1, model: "paligemma-shapes", image_id: imageId });

    await evictDurableObject(stub);

    const after = await stub.describe();
    expect(after.memory).toBeNull(); // in-memory state is gone …
    expect(after.record).toEqual(before.record); // … what was stored is back

    // No image in the request: the session's stored image id is used.
    const rebuilt = await collect(await stub.generate({ session: "evict-me", prompt: "caption en", sampling: greedy() }));
    expect(rebuilt.done.ids).toEqual(first.done.ids);
    expect(rebuilt.done.text).toBe(first.done.text);
    expect(rebuilt.done.usage.prefix_cache).toEqual({ soft_tokens: "miss", kv: "miss", cached_tokens: 0 });

    const cached = await collect(await stub.generate({ session: "evict-me", prompt: "caption en", sampling: greedy() }));
    expect(cached.done.ids).toEqual(first.done.ids);
    expect(cached.done.usage.prefix_cache).toEqual({ soft_tokens: "hit", kv: "hit", cached_tokens: 40 });

    const other = await collect(await stub.generate({ session: "evict-me", prompt: "answer en how many shapes", sampling: greedy() }));
    expect(other.done.text).toBe("1");
    expect(other.done.usage.prefix_cache).toMatchObject({ soft_tokens: "hit", kv: "miss" });
  });

  it("refuses an unknown image id before streaming", async () => {
    const stub = env.SESSIONS.get(env.SESSIONS.idFromName("unknown-image"));
    const reply = await stub.generate({ session: "unknown-image", prompt: "caption en", imageId: `img_${"f".repeat(64)}`, sampling: greedy() });
    expect(reply).toEqual({ ok: false, error: expect.objectContaining({ status: 404, type: "not_found", param: "image_id" }) });
    expect((await stub.describe()).busy).toBe(false);
  });
});
