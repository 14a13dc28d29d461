/**
 * OpenAI-compatible request: `POST /v1/chat/completions`.
 *
 * PaliGemma has no chat template (docs/paligemma.md, "Prompt"): the one user message's text parts, joined by a
 * space, are the prefix, and its one `image_url` part (a data URL) is the image. Fields that would change the
 * meaning of the answer and that PaliGemma cannot honour (n > 1, tools, penalties, JSON mode) are refused with
 * a clear 4xx instead of being ignored; other unknown fields are ignored, as OpenAI clients send many.
 */
import { z } from "zod";
import { InputError } from "../errors.ts";
import { decodeImageString } from "./image-input.ts";
import {
  DEFAULT_MAX_TOKENS,
  MAX_PROMPT_CHARS,
  MAX_TOKENS_LIMIT,
  sessionIdSchema,
  stopList,
  stopSchema,
  type SamplingParams,
} from "./params.ts";

const textPart = z.object({ type: z.literal("text"), text: z.string() });
const imagePart = z.object({
  type: z.literal("image_url"),
  image_url: z.object({ url: z.string().min(1), detail: z.enum(["auto", "low", "high"]).optional() }),
});
const otherPart = z.looseObject({ type: z.string() });
const message = z.looseObject({
  role: z.enum(["system", "developer", "user", "assistant", "tool", "function"]),
  content: z.union([z.string(), z.array(z.union([textPart, imagePart, otherPart]))]).nullable().optional(),
});

/** Zod schema of the chat completion request body (loose: unknown fields are ignored). */
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
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
  n: z.literal(1, "only n = 1 is supported").nullable().optional(),
  logprobs: z.boolean().nullable().optional(),
  top_logprobs: z.literal(0, "top_logprobs is not supported").nullable().optional(),
  frequency_penalty: z.literal(0, "frequency_penalty is not supported").nullable().optional(),
  presence_penalty: z.literal(0, "presence_penalty is not supported").nullable().optional(),
  tools: z.array(z.unknown()).max(0, "tools are not supported by PaliGemma").nullable().optional(),
  response_format: z.object({ type: z.literal("text", "only text responses are supported") }).nullable().optional(),
  session: sessionIdSchema.optional(),
});

/** A parsed chat completion request. */
export type ChatRequestBody = z.output<typeof chatRequestSchema>;

/** The prefix and image of a chat request, after mapping the messages. */
export interface ChatPrompt {
  readonly prompt: string;
  readonly image?: Uint8Array;
}

/**
 * Maps `messages` to PaliGemma's prompt: exactly one user message; its text parts (joined by " ") are the
 * prefix and at most one image_url part is the image (of at most `maxImageBytes`). Throws InputError (422)
 * with the offending path.
 */
export function chatPrompt(body: ChatRequestBody, maxImageBytes?: number): ChatPrompt {
  let userIndex = -1;
  body.messages.forEach((m, i) => {
    if (m.role === "user") {
      if (userIndex >= 0) {
        throw new InputError("unprocessable", "PaliGemma answers one user message; multi-turn chats are not supported", `messages[${i}]`);
      }
      userIndex = i;
    } else {
      throw new InputError(
        "unprocessable",
        `"${m.role}" messages are not supported: PaliGemma has no chat template, send one user message`,
        `messages[${i}].role`,
      );
    }
  });
  const content = body.messages[userIndex].content;
  const base = `messages[${userIndex}].content`;
  if (content === undefined || content === null) throw new InputError("invalid_request", "the user message has no content", base);
  if (typeof content === "string") return checkLength({ prompt: content }, base);
  const texts: string[] = [];
  let image: Uint8Array | undefined;
  content.forEach((part, i) => {
    if (part.type === "text") texts.push((part as z.output<typeof textPart>).text);
    else if (part.type === "image_url") {
      const url = (part as z.output<typeof imagePart>).image_url.url;
      if (image) throw new InputError("unprocessable", "only one image per request is supported", `${base}[${i}]`);
      image = decodeImageString(url, `${base}[${i}].image_url.url`, maxImageBytes).bytes;
    } else {
      throw new InputError("unprocessable", `content part type "${part.type}" is not supported`, `${base}[${i}].type`);
    }
  });
  return checkLength({ prompt: texts.join(" "), image }, base);
}

function checkLength(p: ChatPrompt, param: string): ChatPrompt {
  if (p.prompt.length > MAX_PROMPT_CHARS) {
    throw new InputError("invalid_request", `the prompt is longer than ${MAX_PROMPT_CHARS} characters`, param);
  }
  return p;
}

/** The sampling part of a chat request (`max_completion_tokens` wins over the older `max_tokens`). */
export function chatSampling(body: ChatRequestBody): SamplingParams {
  return {
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? DEFAULT_MAX_TOKENS,
    temperature: body.temperature ?? 0,
    topK: body.top_k ? body.top_k : null,
    topP: body.top_p ?? 1,
    seed: body.seed ?? null,
    stop: stopList(body.stop),
    logprobs: body.logprobs ?? false,
  };
}
