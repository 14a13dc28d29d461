/**
 * Every response carries `x-request-id` (all routes, errors and event streams included) and every request is
 * logged as one JSON line: `{"request_id", "method", "path", "status", "duration_ms"}` (the time to the response's
 * headers; a stream's own timings are in its `usage`). The id is the client's `x-request-id` when it is a sane
 * token (1–128 characters of A-Z a-z 0-9 and `_ . : + = / -`), else a new `req_<32 hex>` (OpenAI's style). Errors
 * logged elsewhere name the same id, and 5xx bodies quote it, so a report can be matched to the log.
 *
 * A route that drops part of a request (the chat route's system messages) lists it with {@link noteIgnored};
 * the response then says so in `x-paligemma-ignored` (comma-separated), whatever its status.
 */
import type { Context, MiddlewareHandler } from "hono";
import { clip } from "../../shared/errors.ts";

/** The request id header, in and out. */
export const REQUEST_ID_HEADER = "x-request-id";
/** The header naming what a request sent and the server dropped. */
export const IGNORED_HEADER = "x-paligemma-ignored";

/** Hono context variables this middleware sets. */
export interface RequestVariables {
  /** The request's id (as sent back in `x-request-id`). */
  requestId: string;
  /** What the route dropped from the request, for {@link IGNORED_HEADER}. */
  ignored?: readonly string[];
}

const SANE_ID = /^[A-Za-z0-9_.:+=/-]{1,128}$/;

/** The client's request id when it is sane, else a new one. */
export function requestIdFor(header: string | undefined): string {
  return header !== undefined && SANE_ID.test(header) ? header : `req_${crypto.randomUUID().replaceAll("-", "")}`;
}

/** Records that the route dropped `what` (e.g. "system_message"). */
export function noteIgnored<E extends { Variables: RequestVariables }>(c: Context<E>, what: readonly string[]): void {
  if (what.length > 0) c.set("ignored", [...(c.get("ignored") ?? []), ...what]);
}

function setHeader(c: Context, name: string, value: string): void {
  try {
    c.res.headers.set(name, value);
  } catch {
    c.res = new Response(c.res.body, c.res); // immutable headers (a fetched response): copy them
    c.res.headers.set(name, value);
  }
}

/** The middleware; `log` receives one line per request (default console.log). */
export function requestLog(log: (line: string) => void = console.log): MiddlewareHandler<{ Variables: RequestVariables }> {
  return async (c, next) => {
    const t0 = performance.now();
    const id = requestIdFor(c.req.header(REQUEST_ID_HEADER));
    c.set("requestId", id);
    await next();
    setHeader(c, REQUEST_ID_HEADER, id);
    const ignored = c.get("ignored");
    if (ignored && ignored.length > 0) setHeader(c, IGNORED_HEADER, [...new Set(ignored)].join(", "));
    const ms = Math.round((performance.now() - t0) * 100) / 100;
    log(JSON.stringify({ request_id: id, method: clip(c.req.method, 16), path: clip(c.req.path, 200), status: c.res.status, duration_ms: ms }));
  };
}
