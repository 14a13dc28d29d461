/**
 * `top_logprobs` on the chat route (issue 17): OpenAI's exact shapes, streamed and not, with alternatives taken
 * from the raw model distribution (masked, temperature 1), as the chosen tokens' logprobs are. The fake engine
 * puts 10 on the planned token, a few alternatives below it and -10 everywhere else, so every value is known.
 */
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { base64, createHarness, evalImage, post } from "./support/harness.ts";
import { readSse } from "./support/sse-client.ts";

const URL_PNG = `data:image/png;base64,${base64(evalImage("img_000_96x96.png"))}`;
const messages = [{ role: "user", content: [{ type: "image_url", image_url: { url: URL_PNG } }, { type: "text", text: "caption en" }] }];

// Alternatives at every step: <0xC3> (id 199, a lone UTF-8 lead byte), <eos> (1), <0x42> (70, "B").
const ALTERNATIVES = { 199: 9, 1: 8.5, 70: 8 };
// The shapes model: 1588 tokenizer ids of 1600 rows, <image> (1587) masked: ids 0..1586 may be sampled.
const ALLOWED = 1587;

/** log-softmax over the allowed ids of the fake's logits at a step whose planned id is `planned`. */
function logprob(planned: number, id: number): number {
  const logits = new Float32Array(1600).fill(-10);
  for (const [alt, v] of Object.entries(ALTERNATIVES)) logits[Number(alt)] = v;
  logits[planned] = 10;
  let sum = 0;
  for (let i = 0; i < ALLOWED; i++) sum += Math.exp(logits[i] - 10);
  return logits[id] - 10 - Math.log(sum);
}

const bytesOf = (s: string) => Array.from(new TextEncoder().encode(s));
const TEXT: Record<number, string> = { 326: "a", 393: " green", 369: " circle" };
const top = (planned: number) => [
  { token: TEXT[planned], logprob: logprob(planned, planned), bytes: bytesOf(TEXT[planned]) },
  { token: "\uFFFD", logprob: logprob(planned, 199), bytes: [0xc3] },
  { token: "<eos>", logprob: logprob(planned, 1), bytes: bytesOf("<eos>") },
];
const entry = (planned: number, text: string, k: number) => ({ token: text, logprob: logprob(planned, planned), bytes: bytesOf(text), top_logprobs: top(planned).slice(0, k) });
const EXPECTED = (k: number) => [entry(326, "a", k), entry(393, " green", k), entry(369, " circle", k)];

describe("top_logprobs", () => {
  it("non-streaming: every content entry lists the k best tokens of the raw distribution", async () => {
    const { app } = await createHarness({ fake: { alternatives: ALTERNATIVES } });
    const res = await post(app, "/v1/chat/completions", { model: "paligemma-shapes", messages, logprobs: true, top_logprobs: 3 });
    const body = await res.json<any>();
    expect(body.choices[0].message.content).toBe("a green circle");
    expect(body.choices[0].logprobs).toEqual({ content: EXPECTED(3), refusal: null });
    // Sampling settings do not change the alternatives (they are of the raw distribution).
    const hot = await post(app, "/v1/chat/completions", { model: "paligemma-shapes", messages, logprobs: true, top_logprobs: 2, temperature: 0.01, top_k: 1, seed: 1 });
    expect((await hot.json<any>()).choices[0].logprobs.content).toEqual(EXPECTED(2));
  });

  it("streaming: each content chunk carries its entry, byte for byte", async () => {
    const { app } = await createHarness({ fake: { alternatives: ALTERNATIVES } });
    const res = await post(app, "/v1/chat/completions", { model: "paligemma-shapes", messages, stream: true, logprobs: true, top_logprobs: 1 });
    const { raw, events } = await readSse(res);
    const first = JSON.parse(events[0].data);
    const chunk = (choices: unknown[]) => `data: ${JSON.stringify({ id: first.id, object: "chat.completion.chunk", created: first.created, model: "paligemma-shapes", choices })}\n\n`;
    const content = (planned: number, text: string) => chunk([{ index: 0, delta: { content: text }, logprobs: { content: [entry(planned, text, 1)], refusal: null }, finish_reason: null }]);
    expect(raw).toBe(
      chunk([{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]) +
        content(326, "a") +
        content(393, " green") +
        content(369, " circle") +
        chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }]) +
        "data: [DONE]\n\n",
    );
  });

  it("through the openai client; 0 gives empty lists, 21 is refused", async () => {
    const { app } = await createHarness({ fake: { alternatives: ALTERNATIVES } });
    const c = new OpenAI({ apiKey: "unused", baseURL: "http://decoder.test/v1", maxRetries: 0, fetch: (i: string | URL | Request, init?: RequestInit) => Promise.resolve(app.request(new Request(i, init))) });
    const typed = messages as OpenAI.ChatCompletionMessageParam[];
    const stream = await c.chat.completions.create({ model: "paligemma-shapes", messages: typed, stream: true, logprobs: true, top_logprobs: 20 });
    const lists: number[] = [];
    for await (const ch of stream) for (const e of ch.choices[0]?.logprobs?.content ?? []) lists.push(e.top_logprobs.length);
    expect(lists).toEqual([20, 20, 20]); // 20 of the 1587 allowed ids: three alternatives, then ties at -10 by id
    const none = await c.chat.completions.create({ model: "paligemma-shapes", messages: typed, logprobs: true, top_logprobs: 0 });
    expect(none.choices[0].logprobs!.content!.map((e) => e.top_logprobs)).toEqual([[], [], []]);
    await expect(c.chat.completions.create({ model: "paligemma-shapes", messages: typed, logprobs: true, top_logprobs: 21 })).rejects.toMatchObject({
      status: 400,
      param: "top_logprobs",
      type: "invalid_request_error",
    });
  });
});
