/** Request validation: native and OpenAI schemas, message mapping, inline images. */
import { describe, expect, it } from "vitest";
import { chatPrompt, chatRequestSchema, chatSampling } from "../../shared/api/chat-schema.ts";
import { generateRequestSchema, nativeSampling } from "../../shared/api/generate-schema.ts";
import { decodeImageString, MAX_IMAGE_BYTES } from "../../shared/api/image-input.ts";
import { formatPath, parseOrThrow } from "../../shared/api/validation.ts";
import { InputError } from "../../shared/errors.ts";

function inputError(fn: () => unknown): InputError {
  try {
    fn();
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
  throw new Error("expected an InputError");
}

describe("native generate schema", () => {
  it("applies defaults: stream, greedy, 64 tokens", () => {
    const body = parseOrThrow(generateRequestSchema, { prompt: "caption en", image_id: `img_${"a".repeat(64)}` });
    expect(body.stream).toBe(true);
    expect(nativeSampling(body)).toEqual({ maxTokens: 64, temperature: 0, topK: null, topP: 1, seed: null, stop: [], logprobs: true, topLogprobs: 0 });
  });

  it("maps top_k 0 to off and a single stop string to a list", () => {
    const body = parseOrThrow(generateRequestSchema, { prompt: "x", top_k: 0, stop: ";", seed: 7, temperature: 0.7, top_p: 0.9 });
    expect(nativeSampling(body)).toMatchObject({ topK: null, stop: [";"], seed: 7, temperature: 0.7, topP: 0.9 });
  });

  it("rejects unknown fields, bad ranges and image + image_id together, naming the field", () => {
    expect(inputError(() => parseOrThrow(generateRequestSchema, { prompt: "x", max_token: 5 })).message).toBe('unknown field(s): "max_token"');
    const e = inputError(() => parseOrThrow(generateRequestSchema, { prompt: "x", max_tokens: 0 }));
    expect([e.status, e.param]).toEqual([400, "max_tokens"]);
    expect(inputError(() => parseOrThrow(generateRequestSchema, { prompt: "x", temperature: -1 })).param).toBe("temperature");
    expect(inputError(() => parseOrThrow(generateRequestSchema, { prompt: "x", top_p: 0 })).param).toBe("top_p");
    expect(inputError(() => parseOrThrow(generateRequestSchema, { prompt: "x", stop: ["a", "b", "c", "d", "e"] })).param).toBe("stop");
    expect(inputError(() => parseOrThrow(generateRequestSchema, { prompt: 3 })).param).toBe("prompt");
    expect(inputError(() => parseOrThrow(generateRequestSchema, { prompt: "x", image_id: "nope" })).param).toBe("image_id");
    const both = inputError(() => parseOrThrow(generateRequestSchema, { prompt: "x", image: "AAAA", image_id: `img_${"0".repeat(64)}` }));
    expect([both.status, both.param]).toEqual([422, "image_id"]);
    expect(inputError(() => parseOrThrow(generateRequestSchema, { prompt: "x", session: "bad id!" })).param).toBe("session");
  });
});

describe("chat schema", () => {
  const image = { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } };
  const base = { model: "m", messages: [{ role: "user", content: [image, { type: "text", text: "caption" }, { type: "text", text: "en" }] }] };

  it("maps one user message to image + prefix (text parts joined by a space)", () => {
    const p = chatPrompt(parseOrThrow(chatRequestSchema, base));
    expect(p.prompt).toBe("caption en");
    expect(Array.from((p.image as { bytes: Uint8Array }).bytes.subarray(0, 4))).toEqual([0x89, 0x50, 0x4e, 0x47]);
    expect(p.spans).toEqual([
      { param: "messages[0].content[1].text", start: 0, end: 7 },
      { param: "messages[0].content[2].text", start: 8, end: 10 },
    ]);
    expect(chatPrompt(parseOrThrow(chatRequestSchema, { model: "m", messages: [{ role: "user", content: "ocr" }] }))).toEqual({
      prompt: "ocr",
      spans: [{ param: "messages[0].content", start: 0, end: 3 }],
      ignored: [],
    });
  });

  it("prefers max_completion_tokens, defaults to greedy, ignores unknown fields", () => {
    const body = parseOrThrow(chatRequestSchema, { ...base, max_tokens: 5, max_completion_tokens: 9, user: "u", seed: 3 });
    expect(chatSampling(body)).toMatchObject({ maxTokens: 9, temperature: 0, topP: 1, seed: 3, logprobs: false });
  });

  it("refuses what PaliGemma cannot do, with the offending path", () => {
    const two = { model: "m", messages: [{ role: "user", content: [image, image] }] };
    expect(inputError(() => chatPrompt(parseOrThrow(chatRequestSchema, two))).param).toBe("messages[0].content[1]");
    const sys = { model: "m", messages: [{ role: "system", content: "be nice" }, base.messages[0]] };
    expect(inputError(() => chatPrompt(parseOrThrow(chatRequestSchema, sys), { systemMessages: "reject" })).param).toBe("messages[0].role");
    expect(chatPrompt(parseOrThrow(chatRequestSchema, sys)).ignored).toEqual(["system_message"]); // the default: ignore
    const turns = { model: "m", messages: [base.messages[0], base.messages[0]] };
    expect(inputError(() => chatPrompt(parseOrThrow(chatRequestSchema, turns))).status).toBe(422);
    // A remote URL is left for the route to fetch (shared/api/remote-image.ts), with the field it came from.
    const remote = { model: "m", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://x/y.png" } }] }] };
    expect(chatPrompt(parseOrThrow(chatRequestSchema, remote)).image).toEqual({ url: "https://x/y.png", param: "messages[0].content[0].image_url.url" });
    const audio = { model: "m", messages: [{ role: "user", content: [{ type: "input_audio", input_audio: {} }] }] };
    expect(inputError(() => chatPrompt(parseOrThrow(chatRequestSchema, audio))).param).toBe("messages[0].content[0].type");
    expect(inputError(() => chatPrompt(parseOrThrow(chatRequestSchema, { ...base, n: 2 }))).param).toBe("n");
    expect(inputError(() => chatPrompt(parseOrThrow(chatRequestSchema, { ...base, tools: [{}] }))).param).toBe("tools");
    expect(inputError(() => parseOrThrow(chatRequestSchema, { ...base, messages: [] })).param).toBe("messages");
    expect(inputError(() => parseOrThrow(chatRequestSchema, { messages: base.messages })).param).toBe("model");
  });
});

describe("inline images", () => {
  it("decodes base64 and data URLs", () => {
    expect(Array.from(decodeImageString("AQID", "image").bytes)).toEqual([1, 2, 3]);
    expect(Array.from(decodeImageString("AQI", "image").bytes)).toEqual([1, 2]);
    expect(decodeImageString("data:image/jpeg;base64,AQID", "image").mediaType).toBe("image/jpeg");
  });

  it("rejects malformed, foreign, remote and oversized images with the right status", () => {
    expect(inputError(() => decodeImageString("not base64!", "image")).status).toBe(400);
    expect(inputError(() => decodeImageString("data:image/png,abc", "image")).status).toBe(400);
    expect(inputError(() => decodeImageString("data:text/plain;base64,AQID", "image")).status).toBe(415);
    expect(inputError(() => decodeImageString("http://example.com/a.png", "image")).status).toBe(422);
    expect(inputError(() => decodeImageString("A".repeat(Math.ceil((MAX_IMAGE_BYTES * 4) / 3) + 16), "image")).status).toBe(413);
  });

  it("formats issue paths as clients write them", () => {
    expect(formatPath(["messages", 0, "content", 1, "image_url", "url"])).toBe("messages[0].content[1].image_url.url");
    expect(formatPath([])).toBe("");
  });
});
