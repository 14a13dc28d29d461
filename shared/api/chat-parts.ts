/**
 * The content of a chat message, validated as OpenAI defines it: a string, or an array of parts that is a
 * discriminated union on `type`. PaliGemma reads two kinds:
 *
 *   {"type": "text", "text": "caption en"}
 *   {"type": "image_url", "image_url": {"url": "data:image/png;base64,…" or "https://…", "detail": "auto" | "low" | "high"}}
 *
 * `image_url` may also be the URL itself as a string (a shorthand some clients send, vLLM accepts it too). Every
 * other part type (`input_audio`, `file`, …) is refused by name with the part's index in `param`, and a part
 * whose fields have the wrong type is refused with the field's path: nothing is coerced (a missing `text` is
 * not "", a number is not "123").
 */
import { z } from "zod";
import { echo } from "../errors.ts";

/** The part types the chat route reads. */
export const CONTENT_PART_TYPES = Object.freeze(["text", "image_url"] as const);

/** OpenAI's values of `image_url.detail` (PaliGemma sees one fixed resolution whatever it says). */
export const IMAGE_DETAILS = Object.freeze(["auto", "low", "high"] as const);

const textPart = z.looseObject({
  type: z.literal("text"),
  text: z.string({ error: "a text part's text must be a string" }),
});

const imageUrl = z.preprocess(
  (value) => (typeof value === "string" ? { url: value } : value),
  z.looseObject(
    {
      url: z.string({ error: "image_url.url must be a string (an https:// URL or a data:image/...;base64,... URL)" }).min(1, "image_url.url is empty"),
      detail: z.enum(IMAGE_DETAILS, { error: `image_url.detail is one of ${IMAGE_DETAILS.join(", ")}` }).nullable().optional(),
    },
    { error: 'image_url must be an object {"url": "data:image/...;base64,..."} (or that URL as a string)' },
  ),
);

const imagePart = z.looseObject({ type: z.literal("image_url"), image_url: imageUrl });

/** Why a value is not a part of a known type, naming the type it gave. */
function partError(issue: { code?: string; input?: unknown }): string {
  const input = issue.input;
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return 'a content part must be an object with a "type" ("text" or "image_url")';
  }
  const type = (input as { type?: unknown }).type;
  if (type === undefined) return 'the content part has no "type"; use "text" or "image_url"';
  if (typeof type !== "string") return 'a content part\'s "type" must be a string: "text" or "image_url"';
  return `content part type ${echo(type)} is not supported; PaliGemma reads "text" and "image_url" parts`;
}

/** One content part: text or an image. */
export const contentPartSchema = z.discriminatedUnion("type", [textPart, imagePart], { error: partError });

/** A text part. */
export type TextPart = z.output<typeof textPart>;
/** An image part (`image_url` normalised to an object). */
export type ImagePart = z.output<typeof imagePart>;
/** Any accepted part. */
export type ContentPart = z.output<typeof contentPartSchema>;

/** A message's content: a string or an array of parts (null/absent are refused later, with the message's path). */
export const messageContentSchema = z.union([z.string(), z.array(contentPartSchema)], {
  error: "a message's content must be a string or an array of content parts",
});
