/**
 * Inline images in workerd, with the real model: the vision side writes its soft tokens to a KV namespace that
 * no session reads (VISION_ONLY_KV), so the session answers only because the encode reply's soft tokens came
 * with the request (vision RPC → decoder → session RPC), not through KV. After eviction the session has to go
 * to its own KV for them, which does not hold them: a 404 `image_id`, and sending the image again works.
 */
import { env } from "cloudflare:workers";
import { evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createDecoderApp } from "../../functions/decoder/app.ts";
import { decoderDeps } from "../../functions/decoder/wiring.ts";
import { visionDeps } from "../../functions/vision/deps.ts";
import { encodeReply } from "../../functions/vision/encode.ts";

const app = createDecoderApp(
  (e) => ({ ...decoderDeps(e), encodeImage: (bytes, options) => encodeReply(visionDeps({ ...e, SOFT_TOKENS: env.VISION_ONLY_KV }), bytes, options) }),
  { log: () => undefined },
);

const generate = (body: object) =>
  app.request("/v1/generate", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ stream: false, ...body }) }, env);

describe("inline images", () => {
  it("reach the session with their soft tokens, not through KV", async () => {
    const res = await generate({ image: env.EVAL_IMAGE_001, prompt: "caption en", session: "inline-1" });
    const body = await res.json<any>();
    expect([res.status, body.text]).toEqual([200, "a blue circle and a yellow square"]); // eval/cases.json, img_001 "caption en"
    expect(await env.SOFT_TOKENS.get(`soft/${body.image_id}`)).toBeNull(); // the session's KV never had them
    expect(await env.VISION_ONLY_KV.get(`soft/${body.image_id}`)).not.toBeNull(); // the image_id cache did get them

    const stub = env.SESSIONS.get(env.SESSIONS.idFromName("inline-1"));
    await evictDurableObject(stub);
    const gone = await generate({ prompt: "caption en", session: "inline-1" });
    expect([gone.status, (await gone.json<any>()).error.param]).toEqual([404, "image_id"]);
  });
});
