/** Soft tokens in KV: keys, chunking, dtypes, TTL, partial entries. */
import { describe, expect, it } from "vitest";
import type { SoftTokens } from "../../shared/engine/types.ts";
import { decodeSoftTokens, encodeSoftTokens } from "../../shared/worker/soft-token-codec.ts";
import { imageIdFor, SoftTokenStore } from "../../shared/worker/soft-token-store.ts";
import { MemoryKV } from "./support/memory-kv.ts";

function soft(tokens: number, dim: number): SoftTokens {
  const data = new Float32Array(tokens * dim);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i) * 3.5;
  return { data, tokens, dim };
}

const ref = { imageSha256: "ab".repeat(32), model: "paligemma-shapes", preprocess: "p1-0123456789abcdef" };

describe("image ids", () => {
  it("differ across models and preprocessing versions, and are stable", async () => {
    const id = await imageIdFor(ref);
    expect(id).toMatch(/^img_[0-9a-f]{64}$/);
    expect(await imageIdFor(ref)).toBe(id);
    expect(await imageIdFor({ ...ref, model: "other" })).not.toBe(id);
    expect(await imageIdFor({ ...ref, preprocess: "p2-0123456789abcdef" })).not.toBe(id);
    expect(await imageIdFor({ ...ref, imageSha256: "cd".repeat(32) })).not.toBe(id);
  });
});

describe("SoftTokenStore", () => {
  it("round-trips float32 exactly in one chunk, header last, with the TTL on every key", async () => {
    const kv = new MemoryKV();
    const store = new SoftTokenStore(kv.asKV(), { ttlSeconds: 120 });
    const s = soft(36, 192);
    const header = await store.put("img_1", ref, s, "float32");
    expect(header).toMatchObject({ dtype: "float32", scaling: "projector_output", tokens: 36, dim: 192, chunks: 1, byte_length: 36 * 192 * 4 });
    expect(kv.puts).toEqual(["soft/img_1/0", "soft/img_1"]);
    expect([...kv.values.values()].map((v) => v.ttl)).toEqual([120, 120]);
    const back = await store.get("img_1");
    expect(back!.soft.data).toEqual(s.data);
    expect(await store.header("img_2")).toBeNull();
    expect(await store.get("img_2")).toBeNull();
  });

  it("chunks values over the chunk size and reassembles them", async () => {
    const kv = new MemoryKV();
    const store = new SoftTokenStore(kv.asKV(), { ttlSeconds: 3600, maxChunkBytes: 1000 });
    const s = soft(10, 33); // 1320 bytes → 2 chunks
    expect((await store.put("img_c", ref, s, "float32")).chunks).toBe(2);
    expect(kv.values.get("soft/img_c/0")!.value).toHaveProperty("byteLength", 1000);
    expect((await store.get("img_c"))!.soft.data).toEqual(s.data);
    kv.values.delete("soft/img_c/1"); // one chunk expired first: a miss, not garbage
    expect(await store.get("img_c")).toBeNull();
  });

  it("stores float16 at half the size within half precision", async () => {
    const kv = new MemoryKV();
    const store = new SoftTokenStore(kv.asKV(), { ttlSeconds: 60 });
    const s = soft(4, 8);
    expect((await store.put("img_h", ref, s, "float16")).byte_length).toBe(64);
    const back = (await store.get("img_h"))!.soft.data;
    for (let i = 0; i < back.length; i++) expect(Math.abs(back[i] - s.data[i])).toBeLessThanOrEqual(Math.abs(s.data[i]) * 2 ** -11);
  });

  it("clamps the TTL to KV's minimum and checks the chunk size", () => {
    const kv = new MemoryKV();
    expect(() => new SoftTokenStore(kv.asKV(), { ttlSeconds: 60, maxChunkBytes: 26 * 1024 * 1024 })).toThrow(RangeError);
    const store = new SoftTokenStore(kv.asKV(), { ttlSeconds: 5 });
    return store.put("img_t", ref, soft(1, 1), "float32").then(() => expect(kv.values.get("soft/img_t")!.ttl).toBe(60));
  });

  it("codec is little-endian and checks sizes", () => {
    const bytes = encodeSoftTokens({ data: Float32Array.of(1), tokens: 1, dim: 1 }, "float32");
    expect(Array.from(bytes)).toEqual([0, 0, 0x80, 0x3f]);
    expect(() => decodeSoftTokens(bytes, "float32", 2, 1)).toThrow(/4 bytes/);
  });
});
