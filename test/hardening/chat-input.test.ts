/**
 * Chat requests that used to be answered wrongly or with a 500 (issue 10, items 4, 5 and 7), through the real
 * decoder app (`app.request`, fake engine): content parts are a discriminated union on `type`, nothing is
 * coerced, answer-changing OpenAI fields are refused by name, data URLs are case-insensitive, bodies must be
 * UTF-8, and error messages neither echo unbounded input nor leak internals. Every refusal here is OpenAI's error
 * shape with its exact message, and none reaches the model.
 */
import { describe, expect, it } from "vitest";
import type { FakeEngine } from "../serving/support/fake-engine.ts";
import { base64, createHarness, post } from "../serving/support/harness.ts";
import { GOOD_PNG } from "./support.ts";

const URL_PNG = `data:image/png;base64,${base64(GOOD_PNG)}`;
const image = { type: "image_url", image_url: { url: URL_PNG } };
const text = { type: "text", text: "caption en" };
const chat = (content: unknown, extra: object = {}) => ({ model: "paligemma-shapes", messages: [{ role: "user", content }], ...extra });

/** The refusal of a chat body: status and OpenAI error object. */
async function refusal(body: unknown): Promise<{ status: number; error: Record<string, unknown> }> {
  const h = await createHarness();
  const res = await post(h.app, "/v1/chat/completions", body);
  const json = await res.json<{ error: Record<string, unknown> }>();
  expect(Object.keys(json.error)).toEqual(["message", "type", "param", "code"]);
  expect((h.engine as FakeEngine).calls).toMatchObject({ prefill: 0, step: 0 });
  return { status: res.status, error: json.error };
}

const invalid = (param: string, message: string, code: string | null = null) => ({
  status: 400,
  error: { message: `${param}: ${message}`, type: "invalid_request_error", param, code },
});

describe("chat content parts (item 4): a bad image part is a 400 naming it, never a 500", () => {
  const MUST_BE_OBJECT = 'image_url must be an object {"url": "data:image/...;base64,..."} (or that URL as a string)';
  const URL_STRING = "image_url.url must be a string (an https:// URL or a data:image/...;base64,... URL)";
  it.each([
    ["null", { type: "image_url", image_url: null }, "messages[0].content[0].image_url", MUST_BE_OBJECT],
    ["missing", { type: "image_url" }, "messages[0].content[0].image_url", MUST_BE_OBJECT],
    ["{}", { type: "image_url", image_url: {} }, "messages[0].content[0].image_url.url", URL_STRING],
    ["a number url", { type: "image_url", image_url: { url: 5 } }, "messages[0].content[0].image_url.url", URL_STRING],
    ["an array", { type: "image_url", image_url: [URL_PNG] }, "messages[0].content[0].image_url", MUST_BE_OBJECT],
  ])("image_url %s", async (_name, part, param, message) => {
    expect(await refusal(chat([part, text]))).toEqual(invalid(param, message));
  });

  it("unknown part types are refused by name and index; non-objects and type-less parts too", async () => {
    expect(await refusal(chat([text, { type: "input_audio", input_audio: { data: "", format: "wav" } }]))).toEqual(
      invalid("messages[0].content[1].type", 'content part type "input_audio" is not supported; PaliGemma reads "text" and "image_url" parts'),
    );
    const long = "x".repeat(5000);
    const named = await refusal(chat([{ type: long }]));
    expect(named.error.message).toBe(`messages[0].content[0].type: content part type "${"x".repeat(100)}…" is not supported; PaliGemma reads "text" and "image_url" parts`);
    expect(await refusal(chat(["caption en"]))).toEqual(
      invalid("messages[0].content[0]", 'a content part must be an object with a "type" ("text" or "image_url")'),
    );
    expect(await refusal(chat([{ text: "caption en" }]))).toEqual(
      invalid("messages[0].content[0].type", 'the content part has no "type"; use "text" or "image_url"'),
    );
  });

  it("image_url as a plain string (a shorthand some clients send) is the same request as {url}", async () => {
    const h = await createHarness();
    const short = await post(h.app, "/v1/chat/completions", chat([{ type: "image_url", image_url: URL_PNG }, text]));
    const long = await post(h.app, "/v1/chat/completions", chat([image, text]));
    expect(short.status).toBe(200);
    expect((await short.json<any>()).choices[0].message.content).toBe((await long.json<any>()).choices[0].message.content);
  });
});

describe("no coercion (item 5)", () => {
  const TEXT = "a text part's text must be a string";
  it.each([["missing", undefined], ["null", null], ["a number", 123], ["an object", { a: 1 }]])("text %s is a 400", async (_name, value) => {
    expect(await refusal(chat([image, { type: "text", text: value }]))).toEqual(invalid("messages[0].content[1].text", TEXT));
  });

  it("image_url.detail takes OpenAI's values only", async () => {
    const part = (detail: unknown) => ({ type: "image_url", image_url: { url: URL_PNG, detail } });
    expect(await refusal(chat([part("ultra"), text]))).toEqual(
      invalid("messages[0].content[0].image_url.detail", "image_url.detail is one of auto, low, high"),
    );
    const h = await createHarness();
    for (const detail of ["auto", "low", "high"]) expect((await post(h.app, "/v1/chat/completions", chat([part(detail), text]))).status).toBe(200);
  });
});

describe("answer-changing OpenAI fields (item 7)", () => {
  it.each([
    ["logit_bias", { "326": 5 }, "logit_bias is not supported; leave it out or send {}"],
    ["frequency_penalty", 0.5, "frequency_penalty is not supported; leave it out or send 0"],
    ["presence_penalty", -1, "presence_penalty is not supported; leave it out or send 0"],
    ["n", 2, "only n = 1 is supported (one answer per request)"],
    ["response_format", { type: "json_object" }, 'only {"type": "text"} responses are supported (no JSON mode or schemas)'],
    ["tools", [{ type: "function", function: { name: "f" } }], "tools are not supported: PaliGemma cannot call tools"],
    ["tool_choice", "required", 'tool_choice may only be "none" or "auto": PaliGemma cannot call tools'],
    ["modalities", ["text", "audio"], 'only ["text"] output is supported'],
    ["reasoning_effort", "high", "reasoning_effort is not supported: PaliGemma is not a reasoning model"],
  ])("%s is refused by name", async (field, value, message) => {
    expect(await refusal(chat([image, text], { [field]: value }))).toEqual(invalid(field, message, "unsupported_value"));
  });

  it("their neutral values are accepted", async () => {
    const h = await createHarness();
    const neutral = {
      logit_bias: {}, frequency_penalty: 0, presence_penalty: 0, n: 1, tools: [], tool_choice: "none",
      response_format: { type: "text" }, modalities: ["text"], user: "u", parallel_tool_calls: false,
    };
    const res = await post(h.app, "/v1/chat/completions", chat([image, text], neutral));
    expect([res.status, (await res.json<any>()).choices[0].message.content]).toEqual([200, "a green circle"]);
  });

  it("stream_options without stream: true is a 400", async () => {
    for (const stream of [undefined, false]) {
      expect(await refusal(chat([image, text], { stream, stream_options: { include_usage: true } }))).toEqual(
        invalid("stream_options", "only allowed when stream is true"),
      );
    }
  });

  it("top_logprobs without logprobs: true is a 400", async () => {
    expect(await refusal(chat([image, text], { top_logprobs: 2 }))).toEqual(invalid("top_logprobs", "only allowed when logprobs is true"));
  });
});

describe("data URLs, encodings and echoes (item 7)", () => {
  it("accepts the data: scheme, media type and ;base64 in any case", async () => {
    const h = await createHarness();
    for (const url of [`DATA:IMAGE/PNG;BASE64,${base64(GOOD_PNG)}`, `Data:image/png;Base64,${base64(GOOD_PNG)}`]) {
      const res = await post(h.app, "/v1/chat/completions", chat([{ type: "image_url", image_url: { url } }, text]));
      expect(res.status, url.slice(0, 20)).toBe(200);
      const native = await post(h.app, "/v1/generate", { image: url, prompt: "caption en", stream: false });
      expect(native.status).toBe(200);
    }
  });

  it("refuses a body that is not valid UTF-8 with a 400 (no replacement characters)", async () => {
    const h = await createHarness();
    const bytes = (s: string, bad: number[]) => new Uint8Array([...new TextEncoder().encode(s), ...bad, ...new TextEncoder().encode('"}')]);
    const native = await h.app.request("/v1/generate", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: bytes(`{"image":"${base64(GOOD_PNG)}","prompt":"caption `, [0xff, 0xfe]),
    });
    expect([native.status, await native.json()]).toEqual([400, { error: { type: "invalid_request", message: "the request body is not valid UTF-8" } }]);
    const body = JSON.stringify(chat([image, { type: "text", text: "PLACEHOLDER" }])).split('PLACEHOLDER"}]}]}')[0];
    const openai = await h.app.request("/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: new Uint8Array([...new TextEncoder().encode(body), 0xc3, 0x28, ...new TextEncoder().encode('"}]}]}')]),
    });
    expect([openai.status, await openai.json()]).toEqual([
      400,
      { error: { message: "the request body is not valid UTF-8", type: "invalid_request_error", param: null, code: null } },
    ]);
    expect((h.engine as FakeEngine).calls.encode).toBe(0);
  });

  it("bounds every echoed string to 100 characters with an ellipsis", async () => {
    const h = await createHarness();
    const long = "m".repeat(10_000);
    const model = await (await post(h.app, "/v1/chat/completions", chat([image, text], { model: long }))).json<any>();
    expect(model.error).toEqual({
      message: `model "${"m".repeat(100)}…" is not served here; GET /v1/models lists "paligemma-shapes", "paligemma-shapes:shapes-lora-a"`,
      type: "not_found_error",
      param: "model",
      code: "model_not_found",
    });
    const field = await (await post(h.app, "/v1/generate", { prompt: "x", [long]: 1 })).json<any>();
    expect(field.error.message).toBe(`unknown field(s): "${"m".repeat(40)}…"`);
    const route = await (await h.app.request(`/v1/${long}`)).json<any>();
    expect(route.error.message).toBe(`no route for GET "/v1/${"m".repeat(96)}…"`);
    const media = await (await post(h.app, "/v1/generate", { prompt: "x", image: `data:image/${long};base64,AAAA` })).json<any>();
    expect(media.error.message).toBe(`unsupported image type "image/${"m".repeat(94)}…"; use one of image/png, image/jpeg, image/webp, image/gif`);
  });

  it("keeps internals out of 5xx bodies: the log has them, the body the request id", async () => {
    const h = await createHarness({ fake: { failAtStep: 0 } });
    const res = await post(h.app, "/v1/generate", { image: base64(GOOD_PNG), prompt: "caption en", stream: false }, { "x-request-id": "trace-42" });
    expect([res.status, res.headers.get("x-request-id"), await res.json()]).toEqual([
      500,
      "trace-42",
      { error: { type: "server_error", message: "internal server error (request id trace-42)" } },
    ]);
    const again = await createHarness({ fake: { failAtStep: 0 } }); // the fake fails its first step only
    const chatRes = await post(again.app, "/v1/chat/completions", chat([image, text]), { "x-request-id": "trace-43" });
    expect([chatRes.status, await chatRes.json()]).toEqual([
      500,
      { error: { message: "internal server error (request id trace-43)", type: "server_error", param: null, code: null } },
    ]);
    const broken = await createHarness({ encode: () => () => Promise.reject(new Error("/srv/vision/encode.ts:81 isolate exceeded its memory")) });
    const down = await post(broken.app, "/v1/chat/completions", chat([image, text]));
    expect([down.status, await down.json()]).toEqual([
      503,
      { error: { message: "the vision service failed; retry later", type: "server_error", param: null, code: "service_unavailable" } },
    ]);
  });
});
