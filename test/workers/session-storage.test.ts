/**
 * Only named sessions persist, in workerd with real Durable Object storage: a request without a session id
 * (through the production wiring, decoderDeps) leaves an object with no stored key and no alarm; a named one
 * stores its record, sets the SESSION_TTL_S alarm (3600 s in test/workers/wrangler.toml), and the alarm deletes it.
 */
import { env } from "cloudflare:workers";
import { listDurableObjectIds, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createDecoderApp } from "../../functions/decoder/app.ts";
import { decoderDeps } from "../../functions/decoder/wiring.ts";
import { visionDeps } from "../../functions/vision/deps.ts";
import { encodeReply } from "../../functions/vision/encode.ts";

// The production wiring, but the vision worker's encode called in-process (this test worker has no VISION binding).
const app = createDecoderApp((e) => ({ ...decoderDeps(e), encodeImage: (bytes, options) => encodeReply(visionDeps(e), bytes, options) }), {
  log: () => undefined,
});

const generate = (body: object, headers: Record<string, string> = {}) =>
  app.request("/v1/generate", { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify({ stream: false, ...body }) }, env);

/** What an object stored: its keys and its alarm. */
function storedState(id: DurableObjectId) {
  return runInDurableObject(env.SESSIONS.get(id), async (_, state) => ({ keys: [...(await state.storage.list()).keys()], alarm: await state.storage.getAlarm() }));
}

describe("session storage", () => {
  it("an unnamed request leaves no record and no alarm behind", async () => {
    const before = new Set((await listDurableObjectIds(env.SESSIONS)).map((id) => id.toString()));
    for (const stream of [false, true]) {
      const res = await generate({ image: env.EVAL_IMAGE_000, prompt: "caption en", stream });
      expect([res.status, res.headers.get("x-session-id")]).toEqual([200, null]);
      const text = await res.text();
      expect(text).toContain('"text":"a green circle"'); // eval/cases.json, img_000 "caption en"
      expect(text).toContain('"session":null');
    }
    const created = (await listDurableObjectIds(env.SESSIONS)).filter((id) => !before.has(id.toString()));
    expect(created.length).toBe(2); // one fresh object per unnamed request
    for (const id of created) expect(await storedState(id)).toEqual({ keys: [], alarm: null });
  });

  it("a named session stores its record and alarm; the alarm deletes both", async () => {
    const t0 = Date.now();
    const res = await generate({ image: env.EVAL_IMAGE_000, prompt: "caption en" }, { "x-session-id": "kept-1" });
    expect(res.headers.get("x-session-id")).toBe("kept-1");
    const { image_id } = await res.json<any>();
    const id = env.SESSIONS.idFromName("kept-1");
    const stored = await storedState(id);
    expect(stored.keys).toEqual(["session"]);
    expect(stored.alarm).toBeGreaterThanOrEqual(t0 + 3600_000);
    expect(stored.alarm).toBeLessThanOrEqual(Date.now() + 3600_000);
    const record = await runInDurableObject(env.SESSIONS.get(id), (_, state) => state.storage.get("session"));
    expect(record).toMatchObject({ v: 1, model: "paligemma-shapes", image_id });

    const next = await generate({ prompt: "answer en how many shapes", session: "kept-1" });
    expect((await next.json<any>()).text).toBe("1");

    expect(await runDurableObjectAlarm(env.SESSIONS.get(id))).toBe(true);
    expect(await storedState(id)).toEqual({ keys: [], alarm: null });
    const gone = await generate({ prompt: "caption en", session: "kept-1" });
    expect([gone.status, (await gone.json<any>()).error.param]).toEqual([404, "session"]);
  });
});
