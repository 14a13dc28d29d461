/**
 * The decoder app builds a request's dependencies (and parses its vars) once per request, however many
 * middlewares and handlers use them (functions/decoder/context.ts).
 */
import { describe, expect, it } from "vitest";
import { createDecoderApp } from "../../functions/decoder/app.ts";
import type { DecoderDeps } from "../../functions/decoder/deps.ts";
import { decoderLimits } from "../../functions/decoder/limits.ts";

function countingApp() {
  let builds = 0;
  const session = {
    generate: async () => ({ ok: false as const, error: { status: 404, type: "not_found", message: "no image", param: "image_id" } }),
    cancel: async () => undefined,
    describe: async () => ({ session: null, record: null, memory: null, engine: null, busy: false, queued: 0, last_run: null }),
    reset: async () => undefined,
  };
  const deps: DecoderDeps = {
    modelId: "paligemma-shapes",
    adapters: async () => [],
    limits: decoderLimits({ RATE_LIMIT_RPM: "0" }),
    apiKeys: async () => null,
    rateLimit: async () => ({ ok: true, remaining: 1, retryAfterS: 0 }),
    encodeImage: async () => ({ ok: false, error: { status: 503, type: "unavailable", message: "not here" } }),
    describeVision: async () => ({ model: "paligemma-shapes", engine: null }),
    session: () => session,
    transientSession: () => session,
  };
  const app = createDecoderApp(() => (builds++, deps), { log: () => undefined });
  return { app, builds: () => builds };
}

describe("the decoder's wiring", () => {
  it("is built once for a generate request (body limit, guard, route)", async () => {
    const { app, builds } = countingApp();
    const res = await app.request("/v1/generate", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ image_id: `img_${"0".repeat(64)}`, prompt: "caption en" }),
    });
    expect(res.status).toBe(404);
    expect(builds()).toBe(1);
  });

  it("is built once for a chat request, and not at all for the playground or an unknown route", async () => {
    const { app, builds } = countingApp();
    const chat = await app.request("/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "caption en" }] }),
    });
    expect(chat.status).toBeGreaterThanOrEqual(400);
    expect(builds()).toBe(1);
    expect((await app.request("/")).status).toBe(200);
    expect((await app.request("/nowhere")).status).toBe(404);
    expect(builds()).toBe(1);
  });
});
