/**
 * `POST /v1/chat/completions`, OpenAI-compatible: the request mapped to a PaliGemma prefix + image
 * (shared/api/chat-schema.ts), the session's events rendered as `chat.completion.chunk` frames ending with
 * `data: [DONE]`, or one `chat.completion`. Its failures, in-stream ones included, take OpenAI's error shape
 * (errors.ts). Dropped system messages are named in `x-paligemma-ignored` (request-log.ts).
 */
import type { Hono, MiddlewareHandler } from "hono";
import { chatPrompt, chatRequestSchema, chatSampling } from "../../shared/api/chat-schema.ts";
import { ChatChunkWriter, chatCompletion, openaiErrorFrame } from "../../shared/api/openai-format.ts";
import { SSE_DONE } from "../../shared/api/sse.ts";
import { json } from "./body.ts";
import type { DecoderAppEnv } from "./context.ts";
import { collect, sseResponse } from "./render.ts";
import { noteIgnored } from "./request-log.ts";
import { SESSION_HEADER, sessionRef, startRun } from "./run.ts";

/** Adds the chat completions route to `app`; `jsonBody` checks the body's type, size and encoding first. */
export function registerChat(app: Hono<DecoderAppEnv>, jsonBody: MiddlewareHandler<DecoderAppEnv>): void {
  app.post("/v1/chat/completions", jsonBody, json(chatRequestSchema), async (c) => {
    const body = c.req.valid("json");
    const d = c.var.deps();
    const requestId = c.get("requestId");
    const session = sessionRef(c, body.session);
    const { prompt, image, spans, ignored } = chatPrompt(body, {
      maxImageBytes: d.limits.maxImageBytes,
      systemMessages: d.limits.chatSystemMessages,
    });
    noteIgnored(c, ignored);
    const sampling = chatSampling(body);
    const run = { model: body.model, prompt, promptSpans: spans, image, sampling, requestId, signal: c.get("disconnect") };
    const { info, reader } = await startRun(d, c.get("owner"), session, run);
    const ctx = {
      id: `chatcmpl-${crypto.randomUUID().replaceAll("-", "")}`,
      created: Math.floor(Date.now() / 1000),
      model: info.model,
      includeUsage: body.stream_options?.include_usage === true,
      logprobs: sampling.logprobs,
    };
    const headers: Record<string, string> = info.session === null ? {} : { [SESSION_HEADER]: info.session };
    if (!body.stream) {
      const { tokens, done } = await collect(reader);
      return c.json(chatCompletion(ctx, done, tokens), 200, headers);
    }
    const writer = new ChatChunkWriter(ctx);
    const format = {
      start: () => writer.start(),
      token: writer.token.bind(writer),
      done: (done: Parameters<ChatChunkWriter["finish"]>[0]) => writer.finish(done) + SSE_DONE,
      error: openaiErrorFrame,
    };
    return sseResponse(reader, format, headers, requestId);
  });
}
