/**
 * The native API's output: SSE frames for `POST /v1/generate` with `stream: true`, or one JSON body.
 *
 *   event: token   data: {"index":0,"id":326,"text":"a","logprob":-0.0123}
 *   event: done    data: {"finish_reason":"eos","text":"a green circle","ids":[…],"model":…,"session":…,
 *                         "image_id":…,"usage":{…}}
 *   event: error   data: {"error":{"type":"server_error","message":"…"}}   (failures after the stream started)
 */
import type { ErrorData } from "../errors.ts";
import type { DoneEvent, RunInfo, TokenEvent } from "./events.ts";
import { sseJson } from "./sse.ts";
import { answerFields } from "../tasks/answer-fields.ts";

/** The `event: token` frame. */
export function nativeTokenFrame(token: TokenEvent): string {
  return sseJson({ index: token.index, id: token.id, text: token.text, logprob: token.logprob }, "token");
}

/**
 * The body of the final `done` event, also the non-streaming response (plus `tokens` there). With the request's
 * prefix and the image's size known, box answers also carry `detections` / `segments` / `dropped` in the
 * original image's pixels (shared/tasks/answer-fields.ts), with each segment's mask when the session decoded it.
 */
export function nativeResult(info: RunInfo, done: DoneEvent, prefix?: string) {
  const boxes = prefix !== undefined && info.image_size ? answerFields(done.text, info.image_size, prefix, done.masks) : null;
  return {
    finish_reason: done.finish_reason,
    text: done.text,
    ids: done.ids,
    model: info.model,
    session: info.session,
    image_id: info.image_id,
    usage: done.usage,
    ...(boxes ?? {}),
  };
}

/** The `event: done` frame. */
export function nativeDoneFrame(info: RunInfo, done: DoneEvent, prefix?: string): string {
  return sseJson(nativeResult(info, done, prefix), "done");
}

/** An {@link ErrorData} as the native shape reads it: the status is not part of the body. */
type NativeErrorFields = Omit<ErrorData, "status">;

/** The native body of a failure: `{"error": {"type", "message", "param"?}}` (OpenAI's `code` is not part of it). */
export function nativeErrorBody(data: NativeErrorFields): { error: { type: string; message: string; param?: string } } {
  const { type, message, param } = data;
  return { error: { type, message, ...(param ? { param } : {}) } };
}

/** The `event: error` frame: the native body of a failure after the stream started. */
export function nativeErrorFrame(data: NativeErrorFields): string {
  return sseJson(nativeErrorBody(data), "error");
}

/** The non-streaming JSON body: the result plus every token with its log-probability. */
export function nativeJson(info: RunInfo, done: DoneEvent, tokens: readonly TokenEvent[], prefix?: string) {
  return { ...nativeResult(info, done, prefix), tokens };
}
