/**
 * The one error mapping both workers install (`app.onError`, `app.notFound`): every failure leaves as
 * `{"error": {"type", "message", "param"?}}`. Bad input (InputError, HTTPException, malformed JSON) is a 4xx;
 * faults of the service are 5xx: 503 `unavailable` when a dependency (the vision worker, a session) failed and
 * the request may be retried, 504 `timeout` when it ran out of time, 500 `server_error` for anything else.
 *
 * What a client sees is {@link publicError}: a 500's own message (a library's text, a file path, a stack) never
 * leaves the server; it is logged and the body says "internal server error". Deployment errors (a var that is
 * not a number) keep their message, which names the var and is prefixed {@link CONFIG_ERROR_PREFIX}.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { clip, echo, InputError, inputErrorStatus, type ErrorData, type InputErrorType } from "../errors.ts";

export type { ErrorData };

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
    super("rate_limited", message, param, "rate_limit_exceeded");
    this.name = "RateLimitedError";
  }
}

/** A fault of the service, not of the request: 503 `unavailable` (retry later) or 504 `timeout`. */
export class ServiceError extends Error {
  /** @param type `unavailable` (503) or `timeout` (504); `message` is shown to the client: keep internals out */
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

/** Starts the message of every {@link ConfigError}, so it survives RPC and {@link publicError}. */
export const CONFIG_ERROR_PREFIX = "deployment configuration: ";

/** A deployment error (a wrangler var that cannot be used): a 500 whose message names the var. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message.startsWith(CONFIG_ERROR_PREFIX) ? message : CONFIG_ERROR_PREFIX + message);
    this.name = "ConfigError";
  }
}

/** A known path asked with a method it does not serve: 405 with `allow`. */
export class MethodNotAllowedError extends Error {
  /** @param allow the methods the path serves */
  constructor(
    message: string,
    readonly allow: readonly string[],
  ) {
    super(message);
    this.name = "MethodNotAllowedError";
  }
}


/** The `{"error": …}` body of a failure in the native shape. */
export interface ErrorResponseBody {
  readonly error: { type: string; message: string; param?: string };
}

/** The 4xx error types of {@link InputError}. */
export const INPUT_ERROR_TYPES: readonly InputErrorType[] = Object.freeze([
  "invalid_request",
  "authentication",
  "not_found",
  "payload_too_large",
  "unsupported_media_type",
  "unprocessable",
  "rate_limited",
]);

/** Status of an error type as sessions and the vision worker report it (500 for unknown types). */
export function statusOfType(type: string): number {
  if (type === "unavailable") return 503;
  if (type === "timeout") return 504;
  if (type === "method_not_allowed") return 405;
  const input = INPUT_ERROR_TYPES.find((t) => t === type);
  return input ? inputErrorStatus(input) : 500;
}

/** Any thrown value as {@link ErrorData} (its own message, for logs and RPC) plus the headers it needs. */
export function describeError(err: unknown): { data: ErrorData; headers: Record<string, string> } {
  const headers: Record<string, string> = {};
  const retry = (err as { retryAfterS?: number } | null)?.retryAfterS;
  if ((err instanceof RateLimitedError || err instanceof ServiceError) && retry !== undefined) {
    headers["retry-after"] = String(Math.max(1, Math.ceil(retry)));
  }
  if (err instanceof InputError) {
    if (err.status === 401) headers["www-authenticate"] = 'Bearer realm="paligemma-edge"';
    const { type, message, param, code } = err;
    return { data: { status: err.status, type, message, ...(param ? { param } : {}), ...(code ? { code } : {}) }, headers };
  }
  if (err instanceof ServiceError) return { data: { status: err.status, type: err.type, message: err.message }, headers };
  if (err instanceof MethodNotAllowedError) {
    headers.allow = err.allow.join(", ");
    return { data: { status: 405, type: "method_not_allowed", message: err.message }, headers };
  }
  if (err instanceof HTTPException) {
    const status = err.status;
    const type = TYPE_BY_STATUS[status] ?? (status < 500 ? "invalid_request" : "server_error");
    return { data: { status, type, message: err.message || `HTTP ${status}` }, headers };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { data: { status: 500, type: "server_error", message }, headers };
}

/** The native error body for any thrown value, with its status and headers (message unfiltered: see publicError). */
export function errorResponseBody(err: unknown): {
  status: ContentfulStatusCode;
  body: ErrorResponseBody;
  headers: Record<string, string>;
  code?: string;
} {
  const { data, headers } = describeError(err);
  return { status: data.status as ContentfulStatusCode, body: nativeErrorBody(data), headers, ...(data.code ? { code: data.code } : {}) };
}

/** Longest error message a client is sent, in code points (the echoed parts are bounded where they are made). */
const MAX_MESSAGE_CHARS = 400;

/**
 * What a client may see of a failure: a 500 `server_error` says "internal server error" (with the request id when
 * known) instead of its own message, unless it is a deployment error; every message is bounded.
 */
export function publicError(data: ErrorData, requestId?: string): ErrorData {
  let message = data.message;
  if (data.status >= 500 && data.type === "server_error" && !message.startsWith(CONFIG_ERROR_PREFIX)) {
    message = requestId ? `internal server error (request id ${requestId})` : "internal server error";
  }
  return { ...data, message: clip(message, MAX_MESSAGE_CHARS) };
}

/** The native body `{"error": {"type", "message", "param"?}}` of a failure. */
export function nativeErrorBody(data: ErrorData): ErrorResponseBody {
  return { error: { type: data.type, message: data.message, ...(data.param ? { param: data.param } : {}) } };
}

/** `app.onError`: maps InputError / HTTPException to 4xx, ServiceError to 503/504, the rest to a logged 500. */
export function onError(err: Error, c: Context): Response {
  const { data, headers } = describeError(err);
  if (data.status >= 500) console.error(`${c.req.method} ${echo(c.req.path)}:`, err);
  return c.json(nativeErrorBody(publicError(data)), data.status as ContentfulStatusCode, headers);
}

/** The error of a request for a route that does not exist. */
export function routeNotFound(c: Context): InputError {
  return new InputError("not_found", `no route for ${c.req.method} ${echo(c.req.path)}`);
}

/** `app.notFound`: unknown routes are a 404 JSON error. */
export function notFound(c: Context): Response {
  return c.json(nativeErrorBody(describeError(routeNotFound(c)).data), 404);
}

/** A handler for a known path asked with a method it does not serve: 405 JSON with `allow`. */
export function methodNotAllowed(allow: readonly string[]) {
  return (c: Context): never => {
    throw new MethodNotAllowedError(`${echo(c.req.path)} does not accept ${echo(c.req.method, 16)}; use ${allow.join(" or ")}`, allow);
  };
}

/**
 * Reads an integer var at least `min` (default 1), falling back to `fallback` when unset; throws ConfigError
 * on garbage (a deployment error, answered as a 500 that names the var).
 */
export function intVar(value: string | undefined, fallback: number, name: string, min = 1): number {
  if (value === undefined || value.trim() === "") return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new ConfigError(`${name} must be an integer ≥ ${min}, got ${echo(value, 32)}`);
  return n;
}
