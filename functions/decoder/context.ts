/**
 * The decoder app's Hono environment, and the middleware that gives each request its context: the routes'
 * dependencies ({@link DecoderDeps}: limits parsed from the vars, keys, sessions, the vision binding), built at
 * most once per request, on first use, and the client's disconnect signal.
 */
import type { MiddlewareHandler } from "hono";
import type { DecoderDeps } from "./deps.ts";
import type { DecoderEnv } from "./env.ts";
import type { RequestVariables } from "./request-log.ts";

/** Hono context variables of a decoder request. */
export interface DecoderVariables extends RequestVariables {
  /** The request's dependencies: built on the first call (a var that cannot be used throws there), then kept. */
  deps: () => DecoderDeps;
  /** Owner id of the request's API key; "" when the API is open (set by the guard, guard.ts). */
  owner: string;
  /**
   * The incoming request's signal, aborted when the client disconnects (`enable_request_signal`), taken before
   * any middleware replaces `c.req.raw` (Hono's body limit wraps the request in a new one with a new signal).
   */
  disconnect: AbortSignal;
}

/** The app's Hono environment. */
export type DecoderAppEnv = { Bindings: DecoderEnv; Variables: DecoderVariables };

/** Sets `deps` (built from the request's env by `build`, once) and `disconnect` for the rest of the request. */
export function requestContext(build: (env: DecoderEnv) => DecoderDeps): MiddlewareHandler<DecoderAppEnv> {
  return async (c, next) => {
    let built: DecoderDeps | undefined;
    c.set("deps", () => (built ??= build(c.env)));
    c.set("disconnect", c.req.raw.signal);
    await next();
  };
}
