/**
 * How the decoder renders a failure: the OpenAI routes (`/v1/chat/completions`, `/v1/models`) in OpenAI's shape
 * `{"error": {"message", "type", "param", "code"}}`, every other route in the native `{"error": {"type",
 * "message", "param"?}}`. Both show only {@link publicError}: a 500's own message stays in the log, next to the
 * request id that the body quotes.
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { openaiErrorBody } from "../../shared/api/openai-errors.ts";
import { nativeErrorBody } from "../../shared/api/native-format.ts";
import { echo, errorData, publicError } from "../../shared/errors.ts";
import { errorHeaders, routeNotFound } from "../../shared/worker/http-errors.ts";
import type { DecoderAppEnv } from "./context.ts";

/** Routes whose errors take OpenAI's shape. */
export const OPENAI_ROUTES: readonly string[] = Object.freeze(["/v1/chat/completions", "/v1/models"]);

/** Whether `path` is one of {@link OPENAI_ROUTES} (a trailing slash included). */
export function isOpenAiRoute(path: string): boolean {
  return OPENAI_ROUTES.includes(path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path);
}

type Ctx = Context<DecoderAppEnv>;

/** `app.onError`: the failure in its route's shape, logged with the request id when it is the service's fault. */
export function errorResponse(err: unknown, c: Ctx): Response {
  const data = errorData(err);
  const id = c.get("requestId");
  if (data.status >= 500) console.error(`request ${id} ${c.req.method} ${echo(c.req.path)}:`, err);
  const shown = publicError(data, id);
  const body = isOpenAiRoute(c.req.path) ? openaiErrorBody(shown) : nativeErrorBody(shown);
  return c.json(body, data.status as ContentfulStatusCode, errorHeaders(err));
}

/** `app.notFound`: a 404 for a route that does not exist. */
export function routeMissing(c: Ctx): Response {
  return errorResponse(routeNotFound(c), c);
}
