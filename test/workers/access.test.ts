/**
 * Access control and rate limiting in workerd: API keys from the env, sessions and images bound to the key that
 * made them (another key gets 404s), and the token-bucket Durable Object answering 429 with `retry-after`.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createDecoderApp } from "../../functions/decoder/app.ts";
import { decoderDeps } from "../../functions/decoder/wiring.ts";
import { visionDeps } from "../../functions/vision/deps.ts";
import { encodeReply } from "../../functions/vision/encode.ts";

const app = createDecoderApp((e) => ({
  ...decoderDeps(e),
  encodeImage: (bytes, options) => encodeReply(visionDeps(e), bytes, options),
  session: (name) => env.FAKE_SESSIONS.get(env.FAKE_SESSIONS.idFromName(name)),
}));

const keyed = { ...env, API_KEYS: "key-a, key-b" };

function call(path: string, key: string | null, init: RequestInit = {}, e: object = keyed) {
  const headers = new Headers(init.headers);
  if (key) headers.set("authorization", `Bearer ${key}`);
  return app.request(path, { ...init, headers }, e);
}

const generate = (key: string, body: object) =>
  call("/v1/generate", key, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ stream: false, ...body }) });

describe("API keys", () => {
  it("refuse /v1/* without a valid key, and bind sessions and images to their key", async () => {
    for (const key of [null, "key-c", "key-a2"]) {
      const res = await call("/v1/models", key);
      expect([res.status, res.headers.get("www-authenticate")]).toEqual([401, 'Bearer realm="paligemma-edge"']);
      // /v1/models is an OpenAI route: OpenAI's error shape.
      expect((await res.json<any>()).error).toEqual({
        message: "send a valid API key as Authorization: Bearer <key>",
        type: "authentication_error",
        param: null,
        code: "invalid_api_key",
      });
      expect(res.headers.get("x-request-id")).toMatch(/^req_[0-9a-f]{32}$/);
    }
    expect((await call("/v1/models", "key-b")).status).toBe(200);
    expect((await call("/healthz", null)).status).toBe(200);

    const mine = await generate("key-a", { image: env.EVAL_IMAGE_000, prompt: "caption en", session: "shared-name" });
    expect(mine.status).toBe(200);
    const { image_id } = await mine.json<any>();
    expect((await call("/v1/sessions/shared-name", "key-a")).status).toBe(200);

    // key-b knows the session id and the image id, and still reaches neither.
    expect((await call("/v1/sessions/shared-name", "key-b")).status).toBe(404);
    expect((await generate("key-b", { prompt: "caption en", session: "shared-name" })).status).toBe(404);
    const borrowed = await generate("key-b", { image_id, prompt: "caption en" });
    expect([borrowed.status, (await borrowed.json<any>()).error.param]).toEqual([404, "image_id"]);
    expect((await call("/v1/sessions/shared-name", "key-b", { method: "DELETE" })).status).toBe(404);
    expect((await call("/v1/sessions/shared-name", "key-a")).status).toBe(200); // untouched

    // The same image uploaded by key-b is its own entry (no "cached" oracle across keys).
    const upload = await call("/v1/images", "key-b", { method: "POST", headers: { "content-type": "image/png" }, body: Uint8Array.from(atob(env.EVAL_IMAGE_000), (c) => c.charCodeAt(0)) });
    expect(upload.status).toBe(201);
    expect((await upload.json<any>()).image_id).not.toBe(image_id);
  });

  it("an unnamed request is answered without a session id (nothing to continue)", async () => {
    const res = await generate("key-a", { image: env.EVAL_IMAGE_000, prompt: "caption en" });
    expect([res.status, res.headers.get("x-session-id"), (await res.json<any>()).session]).toEqual([200, null, null]);
  });
});

describe("rate limiting (Durable Object token bucket)", () => {
  it("answers 429 with retry-after when a key's bucket is empty, per key", async () => {
    const limited = { ...keyed, RATE_LIMIT_RPM: "60", RATE_LIMIT_BURST: "3" };
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await call("/v1/models", "key-a", {}, limited)).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    const refused = await call("/v1/models", "key-a", {}, limited);
    expect(refused.headers.get("retry-after")).toBe("1");
    expect((await refused.json<any>()).error).toMatchObject({ type: "rate_limit_error", code: "rate_limit_exceeded" });
    expect((await call("/v1/models", "key-b", {}, limited)).status).toBe(200); // another key, another bucket
  });
});
