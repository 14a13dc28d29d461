/**
 * The HTTP edge of both workers (`app.onError`, `app.notFound`, 405s): a thrown value becomes its
 * {@link ErrorData} (shared/errors.ts), the headers it needs, and, in the native shape, its response. The
 * decoder renders the same data in OpenAI's shape on the OpenAI routes (functions/decoder/errors.ts).
 *
 * What a client sees is {@link publicError}: a 500's own message (a library's text, a file path, a stack) never
 * leaves the server; it is logged and the body says "internal server error". Deployment errors (a var that is
 * not a number) keep their message, which names the var.
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { nativeErrorBody } from "../api/native-format.ts";
import { echo, errorData, InputError, MethodNotAllowedError, publicError, RateLimitedError, ServiceError } from "../errors.ts";

/** The response headers a failure needs: `retry-after` (429, 503), `www-authenticate` (401), `allow` (405). */
export function errorHeaders(err: unknown): Record<string, string> {
  const headers: Record<string, string> = {};
  if ((err instanceof RateLimitedError || err instanceof ServiceError) && err.retryAfterS !== undefined) {
    headers["retry-after"] = String(Math.max(1, Math.ceil(err.retryAfterS)));
  }
  if (err instanceof InputError && err.status === 401) headers["www-authenticate"] = 'Bearer realm="paligemma-edge"';
  if (err instanceof MethodNotAllowedError) headers.allow = err.allow.join(", ");
  return headers;
}

/** `app.onError`: maps InputError / HTTPException to 4xx, ServiceError to 503/504, the rest to a logged 500. */
export function onError(err: Error, c: Context): Response {
  const data = errorData(err);
  if (data.status >= 500) console.error(`${c.req.method} ${echo(c.req.path)}:`, err);
  return c.json(nativeErrorBody(publicError(data)), data.status as ContentfulStatusCode, errorHeaders(err));
}

/** The error of a request for a route that does not exist. */
export function routeNotFound(c: Context): InputError {
  return new InputError("not_found", `no route for ${c.req.method} ${echo(c.req.path)}`);
}

/** `app.notFound`: unknown routes are a 404 JSON error. */
export function notFound(c: Context): Response {
  return c.json(nativeErrorBody(errorData(routeNotFound(c))), 404);
}

/** A handler for a known path asked with a method it does not serve: 405 JSON with `allow`. */
export function methodNotAllowed(allow: readonly string[]) {
  return (c: Context): never => {
    throw new MethodNotAllowedError(`${echo(c.req.path)} does not accept ${echo(c.req.method, 16)}; use ${allow.join(" or ")}`, allow);
  };
}
