/**
 * Sessions own their KV caches: five session Durable Objects in one isolate (one model, one kernel instance)
 * decoding interleaved each give exactly the answer they give alone, each keeps its prefix cache however many
 * others run (no isolate-wide pool to evict it), and deleting a session gives its cache back.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { EventReader, type SessionEvent } from "../../shared/api/events.ts";
import { encodeReply } from "../../functions/vision/encode.ts";
import { visionDeps } from "../../functions/vision/deps.ts";
import type { SessionRequest } from "../../functions/decoder/session-types.ts";
import { collect, fromBase64 } from "./support.ts";

const sampling = (seed: number): SessionRequest["sampling"] => ({ maxTokens: 12, temperature: 1.5, topK: null, topP: 1, seed, stop: [], logprobs: true, topLogprobs: 0 });

async function imageId(): Promise<string> {
  const encoded = await encodeReply(visionDeps(env), fromBase64(env.EVAL_IMAGE_001));
  if (!encoded.ok) throw new Error(encoded.error.message);
  return encoded.image.image_id;
}

describe("sessions own their caches", () => {
  it("five sessions decoding interleaved in one isolate each equal running alone; each keeps its prefix cache", async () => {
    const image = await imageId();
    const seeds = [1, 2, 3, 4, 5];
    const alone: number[][] = [];
    for (const seed of seeds) {
      const stub = env.SESSIONS.get(env.SESSIONS.idFromName(`alone-${seed}`));
      alone.push((await collect(await stub.generate({ session: `alone-${seed}`, prompt: "caption en", imageId: image, sampling: sampling(seed) }))).done.ids as number[]);
    }
    expect(new Set(alone.map((a) => a.join())).size).toBeGreaterThan(1); // different seeds, different answers

    const stubs = seeds.map((seed) => env.SESSIONS.get(env.SESSIONS.idFromName(`mixed-${seed}`)));
    const replies = await Promise.all(stubs.map((stub, i) => stub.generate({ session: `mixed-${seeds[i]}`, prompt: "caption en", imageId: image, sampling: sampling(seeds[i]) })));
    const readers = replies.map((r) => {
      if (!r.ok) throw new Error(r.error.message);
      return new EventReader(r.stream);
    });
    // One event from each stream in turn: every session's decode steps interleave with the others'.
    const ids: number[][] = seeds.map(() => []);
    const done = seeds.map(() => false);
    while (done.includes(false)) {
      for (let i = 0; i < readers.length; i++) {
        if (done[i]) continue;
        const e: SessionEvent | null = await readers[i].next();
        if (e?.type === "token") ids[i].push(e.token.id);
        else done[i] = true;
      }
    }
    expect(ids).toEqual(alone);

    // Every session still holds its own prefix cache: the same prompt again skips the prefill, same answer.
    for (let i = 0; i < stubs.length; i++) {
      const again = await collect(await stubs[i].generate({ session: `mixed-${seeds[i]}`, prompt: "caption en", sampling: sampling(seeds[i]) }));
      expect(again.done.usage.prefix_cache.kv, `session ${i}`).toBe("hit");
      expect(again.done.ids).toEqual(alone[i]);
      const info = await stubs[i].describe();
      expect(info.memory!.cache_bytes).toBeGreaterThan(0);
    }

    // Deleting a session gives its cache back; the others keep theirs.
    await stubs[0].reset();
    expect((await stubs[0].describe()).memory).toBeNull();
    const other = await collect(await stubs[1].generate({ session: `mixed-${seeds[1]}`, prompt: "caption en", sampling: sampling(seeds[1]) }));
    expect(other.done.usage.prefix_cache.kv).toBe("hit");
  });
});
