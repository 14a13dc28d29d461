/**
 * The OpenAI-compatible routes, driven by the official `openai` client (its fetch routed into `app.request`,
 * no server) and checked byte for byte on the raw stream.
 */
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { base64, createHarness, evalImage, post } from "./support/harness.ts";
import { readSse } from "./support/sse-client.ts";

const URL_PNG = `data:image/png;base64,${base64(evalImage("img_000_96x96.png"))}`;

function client(app: { request: (input: Request) => Response | Promise<Response> }): OpenAI {
  return new OpenAI({
    apiKey: "unused",
    baseURL: "http://decoder.test/v1",
    maxRetries: 0,
    fetch: (input: string | URL | Request, init?: RequestInit) => Promise.resolve(app.request(new Request(input, init))),
  });
}

const userMessage = (url = URL_PNG, text = "caption en") =>
  [{ role: "user" as const, content: [{ type: "image_url" as const, image_url: { url } }, { type: "text" as const, text }] }];

describe("POST /v1/chat/completions with the openai client", () => {
  it("streams the answer, a finish_reason and usage (with the prefix cache report)", async () => {
    const { app } = await createHarness();
    const stream = await client(app).chat.completions.create({
      model: "paligemma-shapes",
      messages: userMessage(),
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let finish: string | null = null;
    let usage: (OpenAI.CompletionUsage & { prefix_cache?: unknown }) | null | undefined = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe("a green circle");
    expect(finish).toBe("stop");
    expect(usage).toMatchObject({ prompt_tokens: 40, completion_tokens: 4, total_tokens: 44, prompt_tokens_details: { cached_tokens: 0 } });
    expect(usage!.prefix_cache).toEqual({ soft_tokens: "miss", kv: "miss", cached_tokens: 0 });
  });

  it("answers without streaming, with logprobs on request, and lists the model", async () => {
    const { app } = await createHarness();
    const c = client(app);
    const r = await c.chat.completions.create({ model: "paligemma-shapes", messages: userMessage(), max_tokens: 24, logprobs: true });
    expect(r.object).toBe("chat.completion");
    expect(r.choices[0].message.content).toBe("a green circle");
    expect(r.choices[0].finish_reason).toBe("stop");
    expect(r.choices[0].logprobs!.content!.map((l) => l.token)).toEqual(["a", " green", " circle"]);
    const models = await c.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["paligemma-shapes", "paligemma-shapes:shapes-lora-a"]);
    const limited = await c.chat.completions.create({ model: "paligemma-shapes", messages: userMessage(), max_completion_tokens: 1 });
    expect([limited.choices[0].message.content, limited.choices[0].finish_reason]).toEqual(["a", "length"]);
  });

  it("reuses the session's prefix cache when the x-session-id header repeats", async () => {
    const { app } = await createHarness();
    const c = client(app);
    const opts = { headers: { "x-session-id": "chat-1" } };
    const first = await c.chat.completions.create({ model: "paligemma-shapes", messages: userMessage() }, opts);
    const again = await c.chat.completions.create({ model: "paligemma-shapes", messages: [{ role: "user", content: "caption en" }] }, opts);
    expect(again.choices[0].message.content).toBe(first.choices[0].message.content);
    expect((again.usage as unknown as { prefix_cache: unknown }).prefix_cache).toEqual({ soft_tokens: "hit", kv: "hit", cached_tokens: 40 });
    expect(again.usage!.prompt_tokens_details!.cached_tokens).toBe(40);
  });

  it("surfaces 4xx errors as APIError with OpenAI's error shape", async () => {
    const { app } = await createHarness();
    const c = client(app);
    const remote = c.chat.completions.create({ model: "paligemma-shapes", messages: userMessage("ftp://example.com/cat.png") });
    await expect(remote).rejects.toMatchObject({ status: 400, error: { type: "invalid_request_error", param: "messages[0].content[0].image_url.url", code: null } });
    await expect(c.chat.completions.create({ model: "gpt-4o", messages: userMessage() })).rejects.toMatchObject({ status: 404 });
    await expect(c.chat.completions.create({ model: "paligemma-shapes", messages: userMessage(), n: 2 })).rejects.toMatchObject({ status: 400 });
  });

  it("raises an error that happens mid-stream", async () => {
    const { app } = await createHarness({ fake: { failAtStep: 1 } });
    const { data: stream, request_id } = await client(app)
      .chat.completions.create({ model: "paligemma-shapes", messages: userMessage(), stream: true })
      .withResponse();
    const read = async () => {
      for await (const chunk of stream) void chunk;
    };
    // OpenAI's error shape, and the engine's own message stays in the log: the body quotes the request id.
    const id = request_id!;
    expect(id).toMatch(/^req_[0-9a-f]{32}$/);
    const err = await read().then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err).toMatchObject({ type: "server_error", code: null, param: null, requestID: id, error: { message: `internal server error (request id ${id})` } });
  });
});

describe("OpenAI stream bytes", () => {
  it("is role chunk, one chunk per visible token, finish chunk, usage chunk, [DONE]", async () => {
    const { app } = await createHarness();
    const res = await post(app, "/v1/chat/completions", {
      model: "paligemma-shapes",
      messages: userMessage(),
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const { raw, events } = await readSse(res);
    const first = JSON.parse(events[0].data);
    const usage = JSON.parse(events.at(-2)!.data).usage;
    const chunk = (choices: unknown[], u: unknown = null) =>
      `data: ${JSON.stringify({ id: first.id, object: "chat.completion.chunk", created: first.created, model: "paligemma-shapes", choices, usage: u })}\n\n`;
    const delta = (d: object, finish: string | null = null) => ({ index: 0, delta: d, logprobs: null, finish_reason: finish });
    expect(raw).toBe(
      chunk([delta({ role: "assistant", content: "" })]) +
        chunk([delta({ content: "a" })]) +
        chunk([delta({ content: " green" })]) +
        chunk([delta({ content: " circle" })]) +
        chunk([delta({}, "stop")]) +
        chunk([], usage) +
        "data: [DONE]\n\n",
    );
    expect(first.id).toMatch(/^chatcmpl-[0-9a-f]{32}$/);
    expect(events.every((e) => e.event === undefined)).toBe(true);
  });
});
