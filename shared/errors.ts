/**
 * Errors that describe bad input. Every layer throws these; the HTTP edge turns them into
 * `{"error": {"type", "message", "param"?}}` with `status`. Anything else is a server fault.
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

export class InputError extends Error {
  readonly status: number;
  constructor(
    readonly type: InputErrorType,
    message: string,
    readonly param?: string,
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
