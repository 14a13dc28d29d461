/**
 * OpenAI-compatible request: `POST /v1/chat/completions`.
 *
 * PaliGemma has no chat template (docs/model-notes.md, "Prompt"): the one user message's text parts, joined by a
 * space, are the prefix, and its one `image_url` part (a data URL, or a remote URL: remote-image.ts) is the image. Content parts are validated as
 * a discriminated union on `type` (chat-parts.ts). Fields that would change the answer and that PaliGemma cannot
 * honour are refused with a 400 naming them (chat-unsupported.ts); other unknown fields are ignored, as OpenAI
 * clients send many. System (and developer) messages are dropped or refused, as the deployment chooses.
 */
import { z } from "zod";
import { InputError } from "../errors.ts";
import type { PromptSpan } from "../text/prompt.ts";
import { messageContentSchema } from "./chat-parts.ts";
import { refuseUnsupported } from "./chat-unsupported.ts";
import { imageSource, type ImageSource } from "./image-input.ts";
import {
  DEFAULT_MAX_TOKENS,
  MAX_PROMPT_CHARS,
  MAX_TOKENS_LIMIT,
  sessionIdSchema,
  stopList,
  stopSchema,
  type GenerationParams,
} from "./params.ts";

/** Most alternatives `top_logprobs` may ask for per token (OpenAI's limit). */
export const MAX_TOP_LOGPROBS = 20;

const message = z.looseObject({
  role: z.enum(["system", "developer", "user", "assistant", "tool", "function"]),
  content: messageContentSchema.nullable().optional(),
});

/** Zod schema of the chat completion request body (loose: unknown fields are ignored, refused ones checked after). */
export const chatRequestSchema = z.looseObject({
  model: z.string().min(1),
  messages: z.array(message).min(1),
  max_tokens: z.int().min(1).max(MAX_TOKENS_LIMIT).nullable().optional(),
  max_completion_tokens: z.int().min(1).max(MAX_TOKENS_LIMIT).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  top_k: z.int().min(0).nullable().optional(),
  seed: z.int().min(0).max(Number.MAX_SAFE_INTEGER).nullable().optional(),
  stop: stopSchema.nullable().optional(),
  stream: z.boolean().nullable().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullable().optional() }).nullable().optional(),
  logprobs: z.boolean().nullable().optional(),
  top_logprobs: z.int().min(0).max(MAX_TOP_LOGPROBS).nullable().optional(),
  session: sessionIdSchema.optional(),
});

/** A parsed chat completion request. */
export type ChatRequestBody = z.output<typeof chatRequestSchema>;

/** What to do with system and developer messages (the `CHAT_SYSTEM_MESSAGES` var). */
export type SystemMessagePolicy = "reject" | "ignore";

/** How the deployment reads chat requests. */
export interface ChatOptions {
  /** Largest image, in bytes. */
  readonly maxImageBytes?: number;
  /** Default "ignore": system/developer messages are dropped and reported in `ignored`. */
  readonly systemMessages?: SystemMessagePolicy;
}

/** The prefix and image of a chat request, after mapping the messages. */
export interface ChatPrompt {
  readonly prompt: string;
  /** The image part's image: decoded bytes, or a remote URL for the route to fetch. */
  readonly image?: ImageSource;
  /** Where each text part lies in `prompt` (to name the part a refused control token came from). */
  readonly spans: readonly PromptSpan[];
  /** What was dropped (`system_message`, `developer_message`), for the `x-paligemma-ignored` header. */
  readonly ignored: readonly string[];
}

/**
 * Maps `messages` to PaliGemma's prompt: exactly one user message; its text parts (joined by " ") are the prefix
 * and at most one image_url part is the image. Throws InputError: 400 for a refused field (chat-unsupported.ts),
 * 422 with the offending path for what PaliGemma cannot answer (two user messages, assistant turns, two images,
 * a system message when the policy is "reject").
 */
export function chatPrompt(body: ChatRequestBody, options: ChatOptions = {}): ChatPrompt {
  refuseUnsupported(body);
  const policy = options.systemMessages ?? "ignore";
  const ignored = new Set<string>();
  let userIndex = -1;
  body.messages.forEach((m, i) => {
    if (m.role === "user") {
      if (userIndex >= 0) {
        throw new InputError("unprocessable", "PaliGemma answers one user message; multi-turn chats are not supported", `messages[${i}]`);
      }
      userIndex = i;
    } else if ((m.role === "system" || m.role === "developer") && policy === "ignore") {
      ignored.add(`${m.role}_message`);
    } else {
      throw new InputError(
        "unprocessable",
        `"${m.role}" messages are not supported: PaliGemma has no chat template, send one user message`,
        `messages[${i}].role`,
      );
    }
  });
  if (userIndex < 0) throw new InputError("unprocessable", "send one user message (PaliGemma answers one prompt about one image)", "messages");
  const content = body.messages[userIndex].content;
  const base = `messages[${userIndex}].content`;
  if (content === undefined || content === null) throw new InputError("invalid_request", "the user message has no content", base);
  const done = { ignored: [...ignored] };
  if (typeof content === "string") return checkLength({ prompt: content, spans: [{ param: base, start: 0, end: content.length }], ...done }, base);
  let prompt = "";
  const spans: PromptSpan[] = [];
  let image: ImageSource | undefined;
  content.forEach((part, i) => {
    if (part.type === "text") {
      if (spans.length > 0) prompt += " ";
      spans.push({ param: `${base}[${i}].text`, start: prompt.length, end: prompt.length + part.text.length });
      prompt += part.text;
    } else {
      if (image) throw new InputError("unprocessable", "only one image per request is supported", `${base}[${i}]`);
      image = imageSource(part.image_url.url, `${base}[${i}].image_url.url`, options.maxImageBytes);
    }
  });
  return checkLength({ prompt, image, spans, ...done }, base);
}

function checkLength(p: ChatPrompt, param: string): ChatPrompt {
  if (p.prompt.length > MAX_PROMPT_CHARS) {
    throw new InputError("invalid_request", `the prompt is longer than ${MAX_PROMPT_CHARS} characters`, param);
  }
  return p;
}

/**
 * The sampling part of a chat request (`max_completion_tokens` wins over the older `max_tokens`). Throws
 * InputError 400 for `top_logprobs` > 0 without `logprobs: true` (as OpenAI).
 */
export function chatSampling(body: ChatRequestBody): GenerationParams {
  const topLogprobs = body.top_logprobs ?? 0;
  if (topLogprobs > 0 && body.logprobs !== true) {
    throw new InputError("invalid_request", "top_logprobs: only allowed when logprobs is true", "top_logprobs");
  }
  return {
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? DEFAULT_MAX_TOKENS,
    temperature: body.temperature ?? 0,
    topK: body.top_k ? body.top_k : null,
    topP: body.top_p ?? 1,
    seed: body.seed ?? null,
    stop: stopList(body.stop),
    logprobs: body.logprobs ?? false,
    topLogprobs: body.logprobs === true ? topLogprobs : 0,
  };
}
