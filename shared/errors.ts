/**
 * Every error a request can end in, and its one form as data.
 *
 * Layers throw the classes below. Where a failure has to cross a boundary that does not carry classes (the
 * vision worker's RPC reply, a session's RPC reply and its NDJSON error event), it travels as {@link ErrorData}:
 * {@link errorData} makes the data from a thrown value, {@link errorFromData} makes the thrown value back, and
 * the HTTP edge renders the same data in the route's shape (shared/api/native-format.ts, openai-errors.ts),
 * after {@link publicError} has taken out what a client must not see.
 *
 * Bad input is an {@link InputError} (4xx); faults of the service are 5xx: {@link ServiceError} (503
 * `unavailable` when a dependency failed and a retry may work, 504 `timeout`, 502 `bad_gateway` when a server the
 * request named failed), {@link ConfigError} (a
 * deployment error, a 500 whose message names the var) and anything else (a 500 `server_error`).
 */
import { HTTPException } from "hono/http-exception";

/** The 4xx error types. */
export type InputErrorType =
  | "invalid_request" // 400: malformed
  | "authentication" // 401
  | "not_found" // 404: unknown model / image / session
  | "payload_too_large" // 413
  | "unsupported_media_type" // 415
  | "unprocessable" // 422: well-formed but semantically invalid
  | "rate_limited"; // 429

const INPUT_STATUS: Readonly<Record<InputErrorType, number>> = Object.freeze({
  invalid_request: 400,
  authentication: 401,
  not_found: 404,
  payload_too_large: 413,
  unsupported_media_type: 415,
  unprocessable: 422,
  rate_limited: 429,
});

/** Every error type and its status; a type not listed is a 500. */
const STATUS_BY_TYPE: Readonly<Record<string, number>> = Object.freeze({
  ...INPUT_STATUS,
  method_not_allowed: 405,
  server_error: 500,
  bad_gateway: 502,
  unavailable: 503,
  timeout: 504,
});

/** The error type of an HTTP status (for errors that only know their status, like Hono's HTTPException). */
const TYPE_BY_STATUS: Readonly<Record<number, string>> = Object.freeze(
  Object.fromEntries(Object.entries(STATUS_BY_TYPE).filter(([, s]) => s < 500).map(([t, s]) => [s, t])),
);

/** Whether `type` is one of the 4xx {@link InputErrorType}s. */
export function isInputErrorType(type: string): type is InputErrorType {
  return Object.hasOwn(INPUT_STATUS, type);
}

/** The HTTP status of an error type (500 for a type it does not know). */
export function statusOfType(type: string): number {
  return Object.hasOwn(STATUS_BY_TYPE, type) ? STATUS_BY_TYPE[type] : 500;
}

/** Bad input: a 4xx with a type, a message for the client and the request field it is about. */
export class InputError extends Error {
  readonly status: number;
  /**
   * @param code a machine-readable reason in OpenAI's vocabulary (`model_not_found`, `context_length_exceeded`,
   *   `unsupported_parameter`, …); shown only on the OpenAI routes
   */
  constructor(
    readonly type: InputErrorType,
    message: string,
    readonly param?: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = "InputError";
    this.status = INPUT_STATUS[type];
  }
}

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

/** The {@link ServiceError} types and their statuses. */
const SERVICE_STATUS = Object.freeze({ bad_gateway: 502, unavailable: 503, timeout: 504 } as const);

/**
 * A fault outside the request: 503 `unavailable` (a dependency failed, retry later), 504 `timeout`, or 502
 * `bad_gateway` (a server the request named, e.g. a remote image URL's, failed or could not be reached).
 */
export class ServiceError extends Error {
  /**
   * @param type `bad_gateway` (502), `unavailable` (503) or `timeout` (504); `message` is shown to the client: keep internals out
   * @param param the request field whose server failed (a remote image URL)
   */
  constructor(
    readonly type: keyof typeof SERVICE_STATUS,
    message: string,
    readonly retryAfterS?: number,
    readonly param?: string,
  ) {
    super(message);
    this.name = "ServiceError";
  }

  /** 502, 503 or 504. */
  get status(): 502 | 503 | 504 {
    return SERVICE_STATUS[this.type];
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

/** A model artifact (manifest, graph, weights, checkpoint) is malformed: a conversion or deployment fault. */
export class ModelFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ModelFormatError";
  }
}

/**
 * A failure as data: what crosses RPC (the vision worker's and a session's replies, a session's error event)
 * and what both wire shapes (native, OpenAI) are rendered from. Snake case where it is wire data.
 */
export interface ErrorData {
  readonly status: number;
  readonly type: string;
  readonly message: string;
  /** The request field the error is about. */
  readonly param?: string;
  /** OpenAI's machine-readable reason (`model_not_found`, …); native bodies leave it out. */
  readonly code?: string;
  /** For a 429 or a 503: seconds until a retry may succeed (the `retry-after` header). */
  readonly retry_after_s?: number;
}

/** Any thrown value as {@link ErrorData}, with its own message (for logs and RPC; see {@link publicError}). */
export function errorData(err: unknown): ErrorData {
  if (err instanceof InputError) {
    const { status, type, message, param, code } = err;
    const retry = err instanceof RateLimitedError ? { retry_after_s: err.retryAfterS } : {};
    return { status, type, message, ...(param ? { param } : {}), ...(code ? { code } : {}), ...retry };
  }
  if (err instanceof ServiceError) {
    const retry = err.retryAfterS !== undefined ? { retry_after_s: err.retryAfterS } : {};
    return { status: err.status, type: err.type, message: err.message, ...(err.param ? { param: err.param } : {}), ...retry };
  }
  if (err instanceof MethodNotAllowedError) return { status: 405, type: "method_not_allowed", message: err.message };
  if (err instanceof HTTPException) {
    const status = err.status;
    const type = TYPE_BY_STATUS[status] ?? (status < 500 ? "invalid_request" : "server_error");
    return { status, type, message: err.message || `HTTP ${status}` };
  }
  return { status: 500, type: "server_error", message: err instanceof Error ? err.message : String(err) };
}

/**
 * The thrown value of an {@link ErrorData}: InputError (RateLimitedError with its retry time) for the 4xx types,
 * ServiceError for `unavailable` and `timeout`, ConfigError for a deployment error, Error otherwise (a 500
 * whose message the client never sees).
 */
export function errorFromData(data: ErrorData): Error {
  const { type, message, param, code, retry_after_s: retry } = data;
  if (type === "rate_limited") return new RateLimitedError(message, retry ?? 1, param);
  if (isInputErrorType(type)) return new InputError(type, message, param, code);
  if (type === "unavailable" || type === "timeout" || type === "bad_gateway") return new ServiceError(type, message, retry, param);
  if (message.startsWith(CONFIG_ERROR_PREFIX)) return new ConfigError(message);
  return new Error(message);
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

/** Longest piece of a request that an error message repeats, in code points. */
export const MAX_ECHO_CHARS = 100;

/**
 * A request's string as an error message may quote it: JSON-quoted (so control characters and quotes stay
 * visible and harmless) and cut to `max` code points with an ellipsis, e.g. `"gpt-4o"` or `"xxxx…"`.
 */
export function echo(value: unknown, max: number = MAX_ECHO_CHARS): string {
  return JSON.stringify(clip(typeof value === "string" ? value : String(value), max));
}

/** `text` cut to `max` code points, with an ellipsis when it was longer. */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  const points = Array.from(text);
  return points.length > max ? `${points.slice(0, max).join("")}…` : text;
}
