/** The wire formats, byte for byte: SSE framing, native frames, OpenAI chunks. */
import { describe, expect, it } from "vitest";
import type { DoneEvent } from "../../shared/api/events.ts";
import { nativeDoneFrame, nativeErrorFrame, nativeTokenFrame } from "../../shared/api/native-format.ts";
import { ChatChunkWriter, chatCompletion, openaiErrorFrame, openaiUsage } from "../../shared/api/openai-format.ts";
import { SSE_DONE, sseFrame, sseJson } from "../../shared/api/sse.ts";

const usage: DoneEvent["usage"] = {
  prompt_tokens: 40,
  completion_tokens: 4,
  total_tokens: 44,
  prefix_cache: { soft_tokens: "hit", kv: "miss", cached_tokens: 0 },
  timings: { time_to_first_token_ms: 5, prefill_ms: 4, decode_ms: 3, total_ms: 9, tokens_per_second: 1000 },
};
const done: DoneEvent = { finish_reason: "eos", text: "a green circle", ids: [326, 393, 369, 1], usage };
const info = { session: "s1", model: "paligemma-shapes", image_id: "img_x", prompt_tokens: 40 };

describe("SSE framing", () => {
  it("writes event, data and a blank line", () => {
    expect(sseFrame("hello", "token")).toBe("event: token\ndata: hello\n\n");
    expect(sseFrame("hello")).toBe("data: hello\n\n");
  });

  it("splits multi-line data into data lines (CRLF, CR and LF)", () => {
    expect(sseFrame("a\nb\r\nc\rd")).toBe("data: a\ndata: b\ndata: c\ndata: d\n\n");
    expect(sseFrame("")).toBe("data: \n\n");
  });

  it("refuses a multi-line event name", () => {
    expect(() => sseFrame("x", "a\nb")).toThrow(RangeError);
  });

  it("serialises JSON compactly on one line", () => {
    expect(sseJson({ text: "a\nb" }, "token")).toBe('event: token\ndata: {"text":"a\\nb"}\n\n');
    expect(SSE_DONE).toBe("data: [DONE]\n\n");
  });
});

describe("native frames", () => {
  it("token, done and error", () => {
    expect(nativeTokenFrame({ index: 0, id: 326, text: "a", logprob: -0.5 })).toBe(
      'event: token\ndata: {"index":0,"id":326,"text":"a","logprob":-0.5}\n\n',
    );
    expect(nativeDoneFrame(info, done)).toBe(
      `event: done\ndata: {"finish_reason":"eos","text":"a green circle","ids":[326,393,369,1],"model":"paligemma-shapes",` +
        `"session":"s1","image_id":"img_x","usage":${JSON.stringify(usage)}}\n\n`,
    );
    expect(nativeErrorFrame({ type: "server_error", message: "boom" })).toBe(
      'event: error\ndata: {"error":{"type":"server_error","message":"boom"}}\n\n',
    );
    // OpenAI's `code` is not part of the native shape.
    expect(nativeErrorFrame({ type: "unprocessable", message: "m", param: "prompt", code: "context_length_exceeded" })).toBe(
      'event: error\ndata: {"error":{"type":"unprocessable","message":"m","param":"prompt"}}\n\n',
    );
  });
});

describe("OpenAI chunks", () => {
  const ctx = { id: "chatcmpl-1", created: 1700000000, model: "paligemma-shapes", includeUsage: false, logprobs: false };
  const head = '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"paligemma-shapes",';

  it("opens with the assistant role, streams content, ends with finish_reason", () => {
    const w = new ChatChunkWriter(ctx);
    expect(w.start()).toBe(
      `data: ${head}"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n`,
    );
    expect(w.token({ index: 0, id: 326, text: "a", logprob: -1 })).toBe(
      `data: ${head}"choices":[{"index":0,"delta":{"content":"a"},"logprobs":null,"finish_reason":null}]}\n\n`,
    );
    expect(w.token({ index: 3, id: 1, text: "", logprob: -1 })).toBe("");
    expect(w.finish(done)).toBe(`data: ${head}"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}\n\n`);
    expect(w.finish({ ...done, finish_reason: "length" })).toContain('"finish_reason":"length"');
  });

  it("with include_usage: usage null on every chunk, then a usage chunk with no choices", () => {
    const w = new ChatChunkWriter({ ...ctx, includeUsage: true });
    expect(w.start()).toMatch(/,"usage":null\}\n\n$/);
    const end = w.finish(done).split("\n\n");
    expect(end).toHaveLength(3);
    expect(end[0]).toMatch(/"finish_reason":"stop"\}\],"usage":null\}$/);
    expect(end[1]).toBe(`data: ${head}"choices":[],"usage":${JSON.stringify(openaiUsage(usage))}}`);
    expect(openaiUsage(usage).prompt_tokens_details).toEqual({ cached_tokens: 0 });
  });

  it("logprobs on request, with UTF-8 bytes", () => {
    const w = new ChatChunkWriter({ ...ctx, logprobs: true });
    const frame = w.token({ index: 0, id: 5, text: "é", logprob: -0.25 });
    expect(JSON.parse(frame.slice(6)).choices[0].logprobs).toEqual({
      content: [{ token: "é", logprob: -0.25, bytes: [195, 169], top_logprobs: [] }],
      refusal: null,
    });
  });

  it("error frame and non-streaming body", () => {
    expect(openaiErrorFrame({ status: 500, type: "server_error", message: "boom" })).toBe(
      'data: {"error":{"message":"boom","type":"server_error","param":null,"code":null}}\n\n',
    );
    expect(openaiErrorFrame({ status: 422, type: "unprocessable", message: "too long", param: "max_tokens", code: "context_length_exceeded" })).toBe(
      'data: {"error":{"message":"too long","type":"invalid_request_error","param":"max_tokens","code":"context_length_exceeded"}}\n\n',
    );
    expect(openaiErrorFrame({ status: 504, type: "timeout", message: "late" })).toBe(
      'data: {"error":{"message":"late","type":"server_error","param":null,"code":"timeout"}}\n\n',
    );
    const body = chatCompletion(ctx, done, []);
    expect(body).toMatchObject({
      object: "chat.completion",
      choices: [{ index: 0, message: { role: "assistant", content: "a green circle", refusal: null }, finish_reason: "stop", logprobs: null }],
      usage: { prompt_tokens: 40, completion_tokens: 4, total_tokens: 44 },
    });
  });
});
