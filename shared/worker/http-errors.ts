/**
 * The one error mapping both workers install (`app.onError`, `app.notFound`): every failure leaves as
 * `{"error": {"type", "message", "param"?}}`. Bad input (InputError, HTTPException, malformed JSON) is a 4xx;
 * faults of the service are 5xx: 503 `unavailable` when a dependency (the vision worker, a session) failed and
 * the request may be retried, 504 `timeout` when it ran out of time, 500 `server_error` for anything else.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { InputError } from "../errors.ts";

const TYPE_BY_STATUS: Record<number, string> = {
  400: "invalid_request",
  401: "authentication",
  404: "not_found",
  405: "method_not_allowed",
  413: "payload_too_large",
  415: "unsupported_media_type",
  422: "unprocessable",
  429: "rate_limited",
};

/** A 429: too many requests for a key, an IP or a session; `retryAfterS` becomes the `retry-after` header. */
export class RateLimitedError extends InputError {
  /** @param retryAfterS whole seconds after which a retry may succeed (≥ 1) */
  constructor(
    message: string,
    readonly retryAfterS: number,
    param?: string,
  ) {
    super("rate_limited", message, param);
    this.name = "RateLimitedError";
  }
}

/** A fault of the service, not of the request: 503 `unavailable` (retry later) or 504 `timeout`. */
export class ServiceError extends Error {
  /** @param type `unavailable` (503) or `timeout` (504) */
  constructor(
    readonly type: "unavailable" | "timeout",
    message: string,
    readonly retryAfterS?: number,
  ) {
    super(message);
    this.name = "ServiceError";
  }

  /** 503 or 504. */
  get status(): 503 | 504 {
    return this.type === "timeout" ? 504 : 503;
  }
}

/** The `{"error": …}` body of a failure. */
export interface ErrorResponseBody {
  readonly error: { type: string; message: string; param?: string };
}

/** The error body for any thrown value, with its status and the headers it needs (`retry-after`). */
export function errorResponseBody(err: unknown): {
  status: ContentfulStatusCode;
  body: ErrorResponseBody;
  headers: Record<string, string>;
} {
  const headers: Record<string, string> = {};
  const retry = (err as { retryAfterS?: number } | null)?.retryAfterS;
  if ((err instanceof RateLimitedError || err instanceof ServiceError) && retry !== undefined) {
    headers["retry-after"] = String(Math.max(1, Math.ceil(retry)));
  }
  if (err instanceof InputError) {
    if (err.status === 401) headers["www-authenticate"] = 'Bearer realm="paligemma-edge"';
    return { status: err.status as ContentfulStatusCode, body: err.toJSON(), headers };
  }
  if (err instanceof ServiceError) return { status: err.status, body: { error: { type: err.type, message: err.message } }, headers };
  if (err instanceof HTTPException) {
    const status = err.status;
    const type = TYPE_BY_STATUS[status] ?? (status < 500 ? "invalid_request" : "server_error");
    return { status, body: { error: { type, message: err.message || `HTTP ${status}` } }, headers };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { status: 500, body: { error: { type: "server_error", message } }, headers };
}

/** `app.onError`: maps InputError / HTTPException to 4xx, ServiceError to 503/504, the rest to a logged 500. */
export function onError(err: Error, c: Context): Response {
  const { status, body, headers } = errorResponseBody(err);
  if (status >= 500) console.error(`${c.req.method} ${c.req.path}:`, err);
  return c.json(body, status, headers);
}

/** `app.notFound`: unknown routes are a 404 JSON error. */
export function notFound(c: Context): Response {
  return c.json({ error: { type: "not_found", message: `no route for ${c.req.method} ${c.req.path}` } }, 404);
}

/** A handler for a known path asked with a method it does not serve: 405 JSON with `allow`. */
export function methodNotAllowed(allow: readonly string[]) {
  return (c: Context): Response =>
    c.json(
      { error: { type: "method_not_allowed", message: `${c.req.path} does not accept ${c.req.method}; use ${allow.join(" or ")}` } },
      405,
      { allow: allow.join(", ") },
    );
}

/**
 * Reads an integer var at least `min` (default 1), falling back to `fallback` when unset; throws on garbage
 * (a deployment error, answered as a 500).
 */
export function intVar(value: string | undefined, fallback: number, name: string, min = 1): number {
  if (value === undefined || value.trim() === "") return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min}, got "${value}"`);
  return n;
}
