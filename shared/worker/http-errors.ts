/**
 * The one error mapping both workers install (`app.onError`, `app.notFound`): every failure leaves as
 * `{"error": {"type", "message", "param"?}}`. Bad input (InputError, HTTPException, malformed JSON) is a 4xx;
 * only faults of the service itself (a broken model file, a bug) are 5xx.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { InputError } from "../errors.ts";

const TYPE_BY_STATUS: Record<number, string> = {
  400: "invalid_request",
  401: "authentication",
  404: "not_found",
  405: "invalid_request",
  413: "payload_too_large",
  415: "unsupported_media_type",
  422: "unprocessable",
  429: "rate_limited",
};

/** The error body for any thrown value, with its status. */
export function errorResponseBody(err: unknown): { status: ContentfulStatusCode; body: { error: { type: string; message: string; param?: string } } } {
  if (err instanceof InputError) return { status: err.status as ContentfulStatusCode, body: err.toJSON() };
  if (err instanceof HTTPException) {
    const status = err.status;
    const type = TYPE_BY_STATUS[status] ?? (status < 500 ? "invalid_request" : "server_error");
    return { status, body: { error: { type, message: err.message || `HTTP ${status}` } } };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { status: 500, body: { error: { type: "server_error", message } } };
}

/** `app.onError`: maps InputError / HTTPException to 4xx and everything else to a logged 500. */
export function onError(err: Error, c: Context): Response {
  const { status, body } = errorResponseBody(err);
  if (status >= 500) console.error(`${c.req.method} ${c.req.path}:`, err);
  return c.json(body, status);
}

/** `app.notFound`: unknown routes are a 404 JSON error. */
export function notFound(c: Context): Response {
  return c.json({ error: { type: "not_found", message: `no route for ${c.req.method} ${c.req.path}` } }, 404);
}

/** Reads a positive integer var, falling back to `fallback` when unset; throws on garbage (a deploy error). */
export function intVar(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${value}"`);
  return n;
}
