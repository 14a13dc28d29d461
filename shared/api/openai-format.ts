/**
 * OpenAI-compatible output: `chat.completion.chunk` frames and `chat.completion` bodies, in the field order and
 * nullability of OpenAI's API reference, so the official `openai` client parses them.
 *
 * Stream shape: a first chunk with `delta: {role: "assistant", content: ""}`, one chunk per token with text,
 * a chunk with an empty delta and `finish_reason`, then (with `stream_options.include_usage`) a chunk with
 * `choices: []` and `usage`, then `data: [DONE]`. With include_usage every earlier chunk carries `usage: null`.
 */
import type { ErrorData } from "../errors.ts";
import type { DoneEvent, FinishReason, TokenEvent, Usage } from "./events.ts";
import { openaiErrorBody } from "./openai-errors.ts";
import { sseJson } from "./sse.ts";

/** OpenAI's finish reasons: a stop string and eos both end as "stop". */
export function openaiFinishReason(reason: FinishReason): "stop" | "length" {
  return reason === "length" ? "length" : "stop";
}

/** OpenAI's usage object, with the native details (prefix cache, timings) kept as extra fields. */
export function openaiUsage(usage: Usage) {
  return {
    prompt_tokens: usage.prompt_tokens,
    completion_tokens: usage.completion_tokens,
    total_tokens: usage.total_tokens,
    prompt_tokens_details: { cached_tokens: usage.prefix_cache.cached_tokens },
    prefix_cache: usage.prefix_cache,
    timings: usage.timings,
  };
}

const utf8 = new TextEncoder();

/**
 * One `logprobs.content` entry: `{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}`. `token` and
 * `bytes` are the text this token completes (the bytes of all entries join to the answer); the alternatives are
 * each token's own piece. `top_logprobs` is [] unless the request asked for it.
 */
function logprobEntry(token: TokenEvent) {
  const top = (token.top_logprobs ?? []).map((t) => ({ token: t.token, logprob: t.logprob, bytes: [...t.bytes] }));
  return { token: token.text, logprob: token.logprob, bytes: Array.from(utf8.encode(token.text)), top_logprobs: top };
}

/** Fixed parts of every chunk of one completion. */
export interface ChunkContext {
  readonly id: string;
  readonly created: number;
  readonly model: string;
  readonly includeUsage: boolean;
  readonly logprobs: boolean;
}

/** Builds the frames of one streamed chat completion. */
export class ChatChunkWriter {
  /** @param ctx the id, creation time, model and options shared by all chunks */
  constructor(private readonly ctx: ChunkContext) {}

  private chunk(choices: unknown[], usage?: unknown): string {
    const { id, created, model, includeUsage } = this.ctx;
    const body: Record<string, unknown> = { id, object: "chat.completion.chunk", created, model, choices };
    if (includeUsage) body.usage = usage ?? null;
    return sseJson(body);
  }

  /** The opening chunk: the assistant role with empty content. */
  start(): string {
    return this.chunk([{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]);
  }

  /** A content chunk, or "" for a token without text (eos, part of a UTF-8 sequence). */
  token(token: TokenEvent): string {
    if (token.text.length === 0) return "";
    const logprobs = this.ctx.logprobs ? { content: [logprobEntry(token)], refusal: null } : null;
    return this.chunk([{ index: 0, delta: { content: token.text }, logprobs, finish_reason: null }]);
  }

  /** The closing chunk(s): finish_reason, then usage when asked for. Does not include `[DONE]`. */
  finish(done: DoneEvent): string {
    const reason = openaiFinishReason(done.finish_reason);
    let out = this.chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: reason }]);
    if (this.ctx.includeUsage) out += this.chunk([], openaiUsage(done.usage));
    return out;
  }
}

/** An error after the stream started, in OpenAI's shape: OpenAI's client raises it as an APIError. */
export function openaiErrorFrame(error: ErrorData): string {
  return sseJson(openaiErrorBody(error));
}

/** The non-streaming `chat.completion` body. */
export function chatCompletion(ctx: ChunkContext, done: DoneEvent, tokens: readonly TokenEvent[]) {
  const visible = tokens.filter((t) => t.text.length > 0);
  return {
    id: ctx.id,
    object: "chat.completion",
    created: ctx.created,
    model: ctx.model,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: done.text, refusal: null },
        logprobs: ctx.logprobs ? { content: visible.map(logprobEntry), refusal: null } : null,
        finish_reason: openaiFinishReason(done.finish_reason),
      },
    ],
    usage: openaiUsage(done.usage),
  };
}

/** `GET /v1/models`. */
export function modelList(models: readonly ({ id: string; created: number } & Record<string, unknown>)[]) {
  return {
    object: "list",
    data: models.map(({ id, created, ...rest }) => ({ id, object: "model", created, owned_by: "paligemma-edge", ...rest })),
  };
}
