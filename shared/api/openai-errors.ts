/**
 * Failures on the OpenAI-compatible routes, in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`,
 * all four keys always present (`param`, `code` null when they do not apply), so the official clients raise the
 * right error class and expose `error.type`, `error.code` and `error.param`. The same object is the payload of an
 * in-stream error frame (`data: {"error": …}`, openai-format.ts), which the `openai` client raises as an APIError.
 *
 * OpenAI's type names by status: 400/405/413/415/422 `invalid_request_error`, 401 `authentication_error`, 404
 * `not_found_error`, 429 `rate_limit_error`, 5xx `server_error`. Codes: the error's own (`model_not_found`,
 * `context_length_exceeded`, `unsupported_parameter`, …), else one implied by the status, else null.
 */
import type { ErrorData } from "../errors.ts";

/** OpenAI's error object. */
export interface OpenAiError {
  readonly message: string;
  readonly type: string;
  readonly param: string | null;
  readonly code: string | null;
}

/** OpenAI's error type for an HTTP status. */
export function openaiErrorType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

/** The code a status implies when the error names none. */
const CODE_BY_STATUS: Readonly<Record<number, string>> = {
  401: "invalid_api_key",
  405: "method_not_allowed",
  413: "payload_too_large",
  415: "unsupported_media_type",
  429: "rate_limit_exceeded",
  502: "bad_gateway",
  503: "service_unavailable",
  504: "timeout",
};

/** A failure (already made public: see publicError) as OpenAI's error object. */
export function openaiError(data: ErrorData): OpenAiError {
  return {
    message: data.message,
    type: openaiErrorType(data.status),
    param: data.param ?? null,
    code: data.code ?? CODE_BY_STATUS[data.status] ?? null,
  };
}

/** The response body `{"error": {…}}`. */
export function openaiErrorBody(data: ErrorData): { error: OpenAiError } {
  return { error: openaiError(data) };
}

