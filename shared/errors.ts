/**
 * Errors that describe bad input. Every layer throws these; the HTTP edge turns them into
 * `{"error": {"type", "message", "param"?}}` with `status` (OpenAI's routes into OpenAI's shape, which also
 * carries `code`). Anything else is a server fault.
 */
export type InputErrorType =
  | "invalid_request" // 400: malformed
  | "authentication" // 401
  | "not_found" // 404: unknown model / image / session
  | "payload_too_large" // 413
  | "unsupported_media_type" // 415
  | "unprocessable" // 422: well-formed but semantically invalid
  | "rate_limited"; // 429

const STATUS: Record<InputErrorType, number> = {
  invalid_request: 400,
  authentication: 401,
  not_found: 404,
  payload_too_large: 413,
  unsupported_media_type: 415,
  unprocessable: 422,
  rate_limited: 429,
};

/** The HTTP status of an input error type. */
export function inputErrorStatus(type: InputErrorType): number {
  return STATUS[type];
}

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
    this.status = STATUS[type];
  }

  toJSON(): { error: { type: InputErrorType; message: string; param?: string } } {
    return { error: { type: this.type, message: this.message, ...(this.param ? { param: this.param } : {}) } };
  }
}

/** A model artifact (manifest, graph, weights, checkpoint) is malformed: a conversion or deployment fault. */
export class ModelFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ModelFormatError";
  }
}

/** A failure as data: what both wire shapes (native, OpenAI) are rendered from, and what crosses RPC. */
export interface ErrorData {
  readonly status: number;
  readonly type: string;
  readonly message: string;
  readonly param?: string;
  /** OpenAI's machine-readable reason (`model_not_found`, …); native bodies leave it out. */
  readonly code?: string;
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
