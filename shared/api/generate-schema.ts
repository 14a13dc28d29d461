/**
 * The native request: `POST /v1/generate`.
 *
 *   {"image": "<base64 or data URL>" | "image_url": "https://…" | "image_id": "img_…", "prompt": "caption en", "max_tokens": 24,
 *    "temperature": 0, "top_k": 40, "top_p": 0.9, "seed": 1, "stop": ["\n"], "stream": true, "session": "s1"}
 *
 * Instead of `prompt`, a `task` with its fields: {"task": "detect", "objects": ["circle"]} (shared/tasks).
 *
 * Unknown fields are rejected (a typo such as `max_token` must not silently fall back to a default).
 */
import { z } from "zod";
import { taskFields } from "../tasks/request.ts";
import {
  DEFAULT_MAX_TOKENS,
  MAX_PROMPT_CHARS,
  MAX_TOKENS_LIMIT,
  imageIdSchema,
  sessionIdSchema,
  stopList,
  stopSchema,
  type GenerationParams,
} from "./params.ts";

/** Zod schema of the native generate request body. */
export const generateRequestSchema = z
  .strictObject({
    model: z.string().min(1).optional(),
    /** A LoRA adapter of the served model by name (the same as model "<base>:<name>"). */
    adapter: z.string().min(1).max(64).optional(),
    image: z.string().min(1).optional(),
    /** A remote image (https://…, fetched under IMAGE_URL_ORIGINS) or a data URL. */
    image_url: z.string().min(1).max(8192).optional(),
    image_id: imageIdSchema.optional(),
    prompt: z.string().max(MAX_PROMPT_CHARS).optional(),
    ...taskFields, // `task` instead of `prompt`: shared/tasks/request.ts
    max_tokens: z.int().min(1).max(MAX_TOKENS_LIMIT).default(DEFAULT_MAX_TOKENS),
    temperature: z.number().min(0).max(2).default(0),
    top_k: z.int().min(0).optional(),
    top_p: z.number().gt(0).max(1).default(1),
    seed: z.int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    stop: stopSchema.optional(),
    stream: z.boolean().default(true),
    session: sessionIdSchema.optional(),
  })
  .refine((body) => [body.image, body.image_url, body.image_id].filter((v) => v !== undefined).length <= 1, {
    message: "give one of image, image_url and image_id, not several",
    path: ["image_id"],
  });

/** A parsed native request. */
export type GenerateRequestBody = z.output<typeof generateRequestSchema>;

/** The sampling part of a native request. */
export function nativeSampling(body: GenerateRequestBody): GenerationParams {
  return {
    maxTokens: body.max_tokens,
    temperature: body.temperature,
    topK: body.top_k === undefined || body.top_k === 0 ? null : body.top_k,
    topP: body.top_p,
    seed: body.seed ?? null,
    stop: stopList(body.stop),
    logprobs: true,
    topLogprobs: 0,
  };
}
