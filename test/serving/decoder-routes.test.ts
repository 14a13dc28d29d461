/**
 * The decoder's routes through Hono's `app.request` (no server), over the real session logic with a fake
 * engine: exact SSE bytes, errors as 4xx JSON, sessions and the prefix cache, mid-stream errors, client abort,
 * per-session serialisation.
 */
import { describe, expect, it } from "vitest";
import { createHarness, evalImage, base64, post } from "./support/harness.ts";
import { FakeEngine, endless } from "./support/fake-engine.ts";
import { readSse, sseEvents } from "./support/sse-client.ts";

const IMG = evalImage("img_000_96x96.png");
const zero = () => 0;

async function errorOf(res: Response): Promise<{ status: number; type: string; param?: string; message: string }> {
  const body = (await res.json<any>()) as { error: { type: string; param?: string; message: string } };
  return { status: res.status, ...body.error };
}

describe("basic routes and errors", () => {
  it("healthz, models, unknown routes", async () => {
    const { app } = await createHarness();
    expect(await (await app.request("/healthz")).json<any>()).toEqual({ status: "ok", worker: "decoder", model: "paligemma-shapes", auth: "open" });
    expect(await (await app.request("/v1/models")).json<any>()).toEqual({
      object: "list",
      data: [
        { id: "paligemma-shapes", object: "model", created: 0, owned_by: "paligemma-edge" },
        {
          id: "paligemma-shapes:shapes-lora-a",
          object: "model",
          created: 0,
          owned_by: "paligemma-edge",
          parent: "paligemma-shapes",
          adapter: { name: "shapes-lora-a", factor_bytes: 540672, vision: true },
        },
      ],
    });
    expect(await errorOf(await app.request("/nope"))).toMatchObject({ status: 404, type: "not_found" });
    const get = await app.request("/v1/generate");
    expect([get.status, get.headers.get("allow")]).toEqual([405, "POST"]);
    expect(await errorOf(get)).toMatchObject({ type: "method_not_allowed" });
  });

  it("bad bodies are 4xx JSON errors, never 5xx", async () => {
    const { app } = await createHarness();
    const raw = (body: string, type = "application/json") =>
      app.request("/v1/generate", { method: "POST", headers: { "content-type": type }, body });
    expect(await errorOf(await raw("{nope"))).toMatchObject({ status: 400, type: "invalid_request" });
    expect(await errorOf(await raw("{}", "text/plain"))).toMatchObject({ status: 415, param: "content-type" });
    expect(await errorOf(await raw(JSON.stringify({ prompt: "x", max_token: 3 })))).toMatchObject({ status: 400 });
    expect(await errorOf(await post(app, "/v1/generate", { prompt: "x" }))).toMatchObject({ status: 400, param: "image" });
    expect(await errorOf(await post(app, "/v1/generate", { prompt: "x", image_id: `img_${"0".repeat(64)}` }))).toMatchObject({
      status: 404,
      param: "image_id",
    });
    expect(await errorOf(await post(app, "/v1/generate", { prompt: "x", image: base64(IMG), model: "gpt-4" }))).toMatchObject({
      status: 404,
      param: "model",
    });
    expect(await errorOf(await post(app, "/v1/generate", { prompt: "x", image: base64(IMG), max_tokens: 2000 }))).toMatchObject({
      status: 400,
      param: "max_tokens",
    });
    expect(await errorOf(await post(app, "/v1/generate", { prompt: "<image>", image: base64(IMG) }))).toMatchObject({
      status: 422,
      param: "prompt",
    });
    expect(await errorOf(await post(app, "/v1/generate", { prompt: "x", image: base64(new Uint8Array([1, 2, 3])) }))).toMatchObject({
      status: 415,
      param: "image",
    });
    const mismatch = await post(app, "/v1/generate", { prompt: "x", session: "a" }, { "x-session-id": "b" });
    expect(await errorOf(mismatch)).toMatchObject({ status: 400, param: "session" });
  });
});

describe("POST /v1/generate", () => {
  it("streams exact SSE frames: one token event per token, then done", async () => {
    const { app } = await createHarness({ now: zero });
    const res = await post(app, "/v1/generate", { image: `data:image/png;base64,${base64(IMG)}`, prompt: "caption en", session: "s1" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(res.headers.get("x-session-id")).toBe("s1");
    const { raw, events } = await readSse(res);
    const tokens = events.filter((e) => e.event === "token").map((e) => JSON.parse(e.data));
    const done = JSON.parse(events.at(-1)!.data);
    const expected =
      [
        [0, 326, "a"],
        [1, 393, " green"],
        [2, 369, " circle"],
        [3, 1, ""],
      ]
        .map(([index, id, text], i) => `event: token\ndata: ${JSON.stringify({ index, id, text, logprob: tokens[i].logprob })}\n\n`)
        .join("") +
      `event: done\ndata: ${JSON.stringify({
        finish_reason: "eos",
        text: "a green circle",
        ids: [326, 393, 369, 1],
        model: "paligemma-shapes",
        session: "s1",
        image_id: done.image_id,
        usage: {
          prompt_tokens: 40,
          completion_tokens: 4,
          total_tokens: 44,
          prefix_cache: { soft_tokens: "miss", kv: "miss", cached_tokens: 0 },
          timings: { time_to_first_token_ms: 0, prefill_ms: 0, decode_ms: 0, total_ms: 0, tokens_per_second: 0 },
        },
      })}\n\n`;
    expect(raw).toBe(expected);
    for (const t of tokens) expect(t.logprob).toBeLessThan(0);
    expect(done.image_id).toMatch(/^img_[0-9a-f]{64}$/);
  });

  it("answers one JSON object without stream, with every token", async () => {
    const { app } = await createHarness();
    const res = await post(app, "/v1/generate", { image: base64(IMG), prompt: "caption en", stream: false, max_tokens: 2 });
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = await res.json<any>();
    expect(body).toMatchObject({ finish_reason: "length", text: "a green", ids: [326, 393], model: "paligemma-shapes" });
    expect(body.tokens.map((t: { id: number }) => t.id)).toEqual([326, 393]);
    expect([body.session, res.headers.get("x-session-id")]).toEqual([null, null]); // no session named: none to continue
  });

  it("cuts the text before a stop string", async () => {
    const { app } = await createHarness();
    const body = await (await post(app, "/v1/generate", { image: base64(IMG), prompt: "caption en", stream: false, stop: " circle" })).json<any>();
    expect(body).toMatchObject({ finish_reason: "stop", text: "a green" });
  });

  it("reports a failure after the stream started as an error event", async () => {
    const { app } = await createHarness({ fake: { failAtStep: 1 } });
    const res = await post(app, "/v1/generate", { image: base64(IMG), prompt: "caption en" });
    const id = res.headers.get("x-request-id");
    const { raw, events } = await readSse(res);
    expect(events.map((e) => e.event)).toEqual(["token", "token", "error"]);
    // The engine's message ("fake engine: step failed") is logged, never sent.
    expect(raw.endsWith(`event: error\ndata: {"error":{"type":"server_error","message":"internal server error (request id ${id})"}}\n\n`)).toBe(true);
  });
});

describe("sessions and the prefix cache", () => {
  it("reuses soft tokens for a new prompt and the whole prefill for a repeated one", async () => {
    const h = await createHarness();
    const engine = h.engine as FakeEngine;
    const ask = async (prompt: string, extra: object = {}) =>
      (await (await post(h.app, "/v1/generate", { prompt, stream: false, ...extra }, { "x-session-id": "conv" })).json<any>()).usage;
    expect((await ask("caption en", { image: base64(IMG) })).prefix_cache).toEqual({ soft_tokens: "miss", kv: "miss", cached_tokens: 0 });
    expect((await ask("answer en how many shapes")).prefix_cache).toEqual({ soft_tokens: "hit", kv: "miss", cached_tokens: 0 });
    const again = await ask("answer en how many shapes");
    expect(again.prefix_cache).toEqual({ soft_tokens: "hit", kv: "hit", cached_tokens: again.prompt_tokens });
    expect(engine.calls).toMatchObject({ encode: 1, prefill: 2 });
    // The same image sent again is found in KV (no encode) and in the session's memory.
    expect((await ask("caption en", { image: base64(IMG) })).prefix_cache.soft_tokens).toBe("hit");
    expect(engine.calls.encode).toBe(1);
  });

  it("rebuilds from its stored record after eviction, with the same answer", async () => {
    const h = await createHarness();
    const first = await (await post(h.app, "/v1/generate", { image: base64(IMG), prompt: "caption en", stream: false, session: "ev" })).json<any>();
    expect(h.stored.get("ev")).toMatchObject({ v: 1, image_id: first.image_id, prompt_ids: expect.any(Array) });
    h.evict("ev");
    const second = await (await post(h.app, "/v1/generate", { prompt: "caption en", stream: false, session: "ev" })).json<any>();
    expect(second.usage.prefix_cache).toEqual({ soft_tokens: "miss", kv: "miss", cached_tokens: 0 });
    expect([second.text, second.ids, second.image_id]).toEqual([first.text, first.ids, first.image_id]);
  });

  it("serialises requests to one session and runs different sessions side by side", async () => {
    const h = await createHarness({ fake: { stepDelayMs: 15 } });
    const log: string[] = [];
    const run = async (session: string, tag: string) => {
      const res = await post(h.app, "/v1/generate", { image: base64(IMG), prompt: "caption en", session });
      for await (const e of sseEvents(res)) if (e.event === "token" || e.event === "done") log.push(`${tag}:${e.event}`);
    };
    await Promise.all([run("same", "A"), run("same", "B")]);
    // Whichever got the session first finishes before the other streams anything.
    const [first, second] = log[0].startsWith("A") ? ["A", "B"] : ["B", "A"];
    expect(log.indexOf(`${first}:done`)).toBeGreaterThan(0);
    expect(log.indexOf(`${second}:token`)).toBeGreaterThan(log.indexOf(`${first}:done`));
    log.length = 0;
    await Promise.all([run("x", "X"), run("y", "Y")]);
    expect(log.indexOf("Y:token")).toBeLessThan(log.indexOf("X:done"));
  });

  it("stops generating when the client disconnects, and frees the session", async () => {
    const h = await createHarness({ fake: { answer: endless, stepDelayMs: 5 } });
    const engine = h.engine as FakeEngine;
    const res = await post(h.app, "/v1/generate", { image: base64(IMG), prompt: "caption en", session: "gone", max_tokens: 500 });
    const events = sseEvents(res);
    for (let i = 0; i < 3; i++) expect((await events.next()).value.event).toBe("token");
    await events.cancel();
    await new Promise((r) => setTimeout(r, 50));
    const steps = engine.calls.step;
    await new Promise((r) => setTimeout(r, 50));
    expect(engine.calls.step).toBe(steps);
    expect(steps).toBeLessThan(20);
    const info = await (await h.app.request("/v1/sessions/gone")).json<any>();
    expect(info).toMatchObject({ session: "gone", busy: false, queued: 0, last_run: { finish_reason: "aborted" } });
    // The session takes the next request at once.
    const next = await post(h.app, "/v1/generate", { prompt: "caption en", session: "gone", max_tokens: 3, stream: false });
    expect((await next.json<any>()).finish_reason).toBe("length");
  });

  it("DELETE /v1/sessions/:id forgets the session", async () => {
    const h = await createHarness();
    await post(h.app, "/v1/generate", { image: base64(IMG), prompt: "caption en", session: "del", stream: false });
    expect((await h.app.request("/v1/sessions/del", { method: "DELETE" })).status).toBe(204);
    const res = await post(h.app, "/v1/generate", { prompt: "caption en", session: "del", stream: false });
    expect(await errorOf(res)).toMatchObject({ status: 404, type: "not_found", param: "session" });
    expect((await h.app.request("/v1/sessions/del")).status).toBe(404);
    expect((await h.app.request("/v1/sessions/del", { method: "DELETE" })).status).toBe(404);
  });
});
