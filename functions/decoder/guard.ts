/**
 * What stands in front of every `/v1/*` route, in order:
 *
 * 1. CORS, only when `CORS_ORIGINS` names origins (the playground is served from the API's own origin and needs
 *    none). Preflights are answered here, before authentication, as browsers send them without credentials.
 * 2. API keys, when `API_KEYS` holds any: `Authorization: Bearer <key>` or 401. The key's owner id scopes the
 *    request's sessions and images (see run.ts). Without keys the API is open, and says so in the log once.
 * 3. A token bucket per key (per client IP when open, and for requests whose key was refused, so keys cannot be
 *    guessed at speed): 429 with `retry-after` when it is empty. An open API does not limit loopback clients:
 *    that is local development (`npm start`, load tests, the eval), since Cloudflare's edge never reports a
 *    loopback address.
 */
import type { Context, MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import { InputError, RateLimitedError } from "../../shared/errors.ts";
import { authenticate, OPEN_OWNER } from "../../shared/worker/auth.ts";
import type { DecoderAppEnv } from "./context.ts";
import type { DecoderDeps } from "./deps.ts";
import { IGNORED_HEADER, REQUEST_ID_HEADER } from "./request-log.ts";

let announcedOpen = false;

/** Addresses of this machine, as `cf-connecting-ip` reports them in `wrangler dev`. */
const LOOPBACK = new Set(["127.0.0.1", "::1", "::ffff:127.0.0.1"]);

/** The client's address as Cloudflare's edge sets it (clients cannot); "local" when there is none (tests). */
export function clientIp(c: Context): string {
  return c.req.header("cf-connecting-ip") ?? "local";
}

async function takeOrRefuse(deps: DecoderDeps, key: string): Promise<void> {
  const decision = await deps.rateLimit(key, deps.limits.rateLimit);
  if (!decision.ok) {
    throw new RateLimitedError(`too many requests; retry in ${decision.retryAfterS} s`, decision.retryAfterS);
  }
}

function corsFor(origins: readonly string[]): MiddlewareHandler<DecoderAppEnv> {
  return cors({
    origin: (origin) => (origins.includes("*") ? "*" : origins.includes(origin) ? origin : null),
    allowMethods: ["GET", "POST", "DELETE", "OPTIONS"],
    allowHeaders: ["authorization", "content-type", "x-session-id"],
    exposeHeaders: ["x-session-id", "retry-after", REQUEST_ID_HEADER, IGNORED_HEADER],
    maxAge: 600,
  });
}

async function authorize(c: Context<DecoderAppEnv>, d: DecoderDeps, next: () => Promise<void>): Promise<void> {
  const keys = await d.apiKeys();
  if (keys === null) {
    if (!announcedOpen) {
      announcedOpen = true;
      console.warn("API_KEYS is not set: /v1/* is open to anyone who can reach it, loopback clients unlimited (fine for local dev, not for a deployment)");
    }
    c.set("owner", OPEN_OWNER);
    const ip = clientIp(c);
    if (!LOOPBACK.has(ip)) await takeOrRefuse(d, `ip:${ip}`);
    return next();
  }
  const owner = await authenticate(c.req.header("authorization"), keys);
  if (owner === null) {
    await takeOrRefuse(d, `ip:${clientIp(c)}`);
    throw new InputError("authentication", "send a valid API key as Authorization: Bearer <key>");
  }
  c.set("owner", owner);
  await takeOrRefuse(d, `key:${owner}`);
  return next();
}

/** The guard middleware for `/v1/*` (after {@link requestContext}, which provides `deps`). */
export function guard(): MiddlewareHandler<DecoderAppEnv> {
  return async (c, next) => {
    const d = c.var.deps();
    const run = () => authorize(c, d, next);
    if (d.limits.corsOrigins.length === 0) return run();
    return corsFor(d.limits.corsOrigins)(c, run);
  };
}
