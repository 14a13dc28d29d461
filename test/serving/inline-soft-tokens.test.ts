/**
 * Inline images: the soft tokens the vision worker computes for a request come back in its encode reply and
 * reach the session in the same call, so the session reads no soft-token chunk from KV; an image that was
 * already stored (nothing computed) is read from KV as before, and KV stays the image_id cache.
 */
import { describe, expect, it } from "vitest";
import { encodeReply } from "../../functions/vision/encode.ts";
import { SoftTokenStore } from "../../shared/worker/soft-token-store.ts";
import { createHarness, evalImage, base64, post } from "./support/harness.ts";

const PNG = evalImage("img_000_96x96.png");
const chunkReads = (gets: readonly string[]) => gets.filter((k) => /^soft\/img_[0-9a-f]{64}\/\d+$/.test(k));

describe("the encode reply", () => {
  it("carries the stored header and tensor bytes with inline, and only when it computed them", async () => {
    const h = await createHarness();
    const deps = { model: async () => h.model, store: new SoftTokenStore(h.kv.asKV(), { ttlSeconds: 3600 }), maxBytes: 1 << 20, maxPixels: 1 << 20 };
    const first = await encodeReply(deps, PNG, { inline: true });
    if (!first.ok || !first.soft) throw new Error(`no inline soft tokens: ${JSON.stringify(first)}`);
    const { image_id } = first.image;
    expect(first.soft.header).toEqual(await h.kv.get(`soft/${image_id}`, "json"));
    expect(first.soft.header).toMatchObject({ image_id, model: "paligemma-shapes", tokens: 36, dim: 192, dtype: "float32", width: 96, height: 96 });
    expect(first.soft.bytes).toEqual(new Uint8Array((await h.kv.get(`soft/${image_id}/0`, "arrayBuffer")) as ArrayBuffer));
    expect(first.soft.bytes.length).toBe(36 * 192 * 4);
    const again = await encodeReply(deps, PNG, { inline: true });
    expect(again).toEqual({ ok: true, image: { image_id, cached: true, model: "paligemma-shapes", tokens: 36 } }); // nothing computed, nothing inline
    const plain = await encodeReply(deps, PNG, { force: true });
    expect(plain.ok && "soft" in plain).toBe(false); // not asked
  });
});

describe("a request with an inline image", () => {
  it("reaches its session with the soft tokens: no KV chunk read, the same answer", async () => {
    const h = await createHarness();
    const res = await post(h.app, "/v1/generate", { image: base64(PNG), prompt: "caption en", stream: false, session: "inline" });
    const body = await res.json<any>();
    expect([res.status, body.text]).toEqual([200, "a green circle"]);
    expect(chunkReads(h.kv.gets)).toEqual([]);
    expect(h.kv.values.has(`soft/${body.image_id}/0`)).toBe(true); // KV still holds them, for image_id and eviction

    h.evict("inline"); // memory gone: the stored record's image id is read back from KV
    const rebuilt = await (await post(h.app, "/v1/generate", { prompt: "caption en", stream: false, session: "inline" })).json<any>();
    expect(rebuilt.text).toBe("a green circle");
    expect(chunkReads(h.kv.gets)).toEqual([`soft/${body.image_id}/0`]);
  });

  it("of an image already stored reads its soft tokens from KV (the vision worker computed none)", async () => {
    const h = await createHarness();
    const up = await h.app.request("/v1/images", { method: "POST", headers: { "content-type": "image/png" }, body: PNG });
    const { image_id } = await up.json<any>();
    const res = await post(h.app, "/v1/chat/completions", {
      model: "paligemma-shapes",
      messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: `data:image/png;base64,${base64(PNG)}` } }, { type: "text", text: "caption en" }] }],
    });
    expect((await res.json<any>()).choices[0].message.content).toBe("a green circle");
    expect(chunkReads(h.kv.gets)).toEqual([`soft/${image_id}/0`]);
  });
});
