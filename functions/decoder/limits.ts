/**
 * The decoder's configurable limits: wrangler vars (root wrangler.toml) with defaults. A var that is set but
 * not a number fails every request with a 500 naming it: a deployment error, not something to guess around.
 */
import type { SystemMessagePolicy } from "../../shared/api/chat-schema.ts";
import { MAX_IMAGE_BYTES } from "../../shared/api/image-input.ts";
import { IMAGE_URL_TIMEOUT_S, imageUrlPolicy, type ImageUrlPolicy } from "../../shared/api/remote-image.ts";
import { ConfigError, echo } from "../../shared/errors.ts";
import { intVar } from "../../shared/worker/env-vars.ts";
import type { BucketLimit } from "../../shared/worker/token-bucket.ts";

/** The vars the worker's limits read (all optional: each has a default below). */
export interface WorkerLimitsEnv {
  /** Origins allowed to call /v1/* from a browser, comma-separated, or "*". Unset = no CORS (same origin only). */
  readonly CORS_ORIGINS?: string;
  /** Requests per minute per key (or IP); 0 turns rate limiting off. */
  readonly RATE_LIMIT_RPM?: string;
  /** Requests a key may send at once after being idle. */
  readonly RATE_LIMIT_BURST?: string;
  /** Largest JSON request body, in bytes. Default: room for the largest image in base64 plus 1 MiB. */
  readonly MAX_BODY_BYTES?: string;
  /** Largest image file, in bytes (keep equal to the vision worker's). */
  readonly MAX_IMAGE_BYTES?: string;
  /** Largest max_tokens a request may ask for. */
  readonly MAX_NEW_TOKENS?: string;
  /** Chat system/developer messages: "ignore" (default: dropped, named in `x-paligemma-ignored`) or "reject" (422). */
  readonly CHAT_SYSTEM_MESSAGES?: string;
  /** Remote image URLs fetched: "*" (default: any https origin), "" (none), or comma-separated origins. */
  readonly IMAGE_URL_ORIGINS?: string;
  /** Time limit of one remote image fetch (redirects and body), in seconds. */
  readonly IMAGE_URL_TIMEOUT_S?: string;
}

/** The vars a session's limits read (all optional: each has a default below). */
export interface SessionLimitsEnv {
  /** Largest prompt, in text tokens (bos, prefix and "\n"; image tokens not counted). */
  readonly MAX_PROMPT_TOKENS?: string;
  /** The model's context: prompt (image tokens included) + max_tokens must fit. */
  readonly MAX_CONTEXT_TOKENS?: string;
  /** Requests one session may hold at once, running and queued. */
  readonly MAX_SESSION_REQUESTS?: string;
  /** The most time one request may hold (or wait for) its session, in seconds. */
  readonly REQUEST_TIMEOUT_S?: string;
  /** A stream whose client reads nothing for this long is ended and its session freed, in seconds. */
  readonly STREAM_IDLE_TIMEOUT_S?: string;
  /** Idle time after which a session's stored state is deleted, in seconds. */
  readonly SESSION_TTL_S?: string;
}

/** Defaults of every limit (see the README's "Limits" table for the reasons). */
export const DECODER_DEFAULTS = Object.freeze({
  maxImageBytes: MAX_IMAGE_BYTES,
  maxPromptTokens: 512,
  maxNewTokens: 512,
  /** Gemma's and Gemma 2's max_position_embeddings in every PaliGemma config.json. */
  contextTokens: 8192,
  maxSessionRequests: 4,
  requestTimeoutSeconds: 300,
  streamIdleTimeoutSeconds: 30,
  rateLimitPerMinute: 600,
  rateLimitBurst: 100,
  sessionTtlSeconds: 24 * 3600,
});

/** Limits the worker applies before a request reaches a session. */
export interface DecoderLimits {
  readonly maxBodyBytes: number;
  readonly maxImageBytes: number;
  readonly maxNewTokens: number;
  readonly rateLimit: BucketLimit;
  /** Allowed browser origins ("*" = any); empty = CORS off. */
  readonly corsOrigins: readonly string[];
  /** What the chat route does with system/developer messages (`CHAT_SYSTEM_MESSAGES`, default "ignore"). */
  readonly chatSystemMessages: SystemMessagePolicy;
  /** Which remote image URLs are fetched (`IMAGE_URL_ORIGINS`). */
  readonly imageUrls: ImageUrlPolicy;
  /** Time limit of one remote image fetch, in ms (`IMAGE_URL_TIMEOUT_S`). */
  readonly imageUrlTimeoutMs: number;
}

/** Reads `CHAT_SYSTEM_MESSAGES`: "ignore" (default) or "reject"; anything else is a ConfigError. */
export function systemMessagePolicy(value: string | undefined): SystemMessagePolicy {
  const v = (value ?? "").trim();
  if (v === "" || v === "ignore") return "ignore";
  if (v === "reject") return "reject";
  throw new ConfigError(`CHAT_SYSTEM_MESSAGES must be "ignore" or "reject", got ${echo(value, 32)}`);
}

/** Limits a session applies. */
export interface SessionLimits {
  readonly maxPromptTokens: number;
  readonly contextTokens: number;
  /** Requests at once per session, running and queued. */
  readonly maxRequests: number;
  readonly requestTimeoutMs: number;
  readonly idleTimeoutMs: number;
}

/** Room a JSON body needs for an image of `imageBytes` in base64 plus the rest of the request. */
export function jsonBodyLimit(imageBytes: number): number {
  return Math.ceil((imageBytes * 4) / 3) + 1024 * 1024;
}

/** The worker-level limits of `env`. */
export function decoderLimits(env: WorkerLimitsEnv): DecoderLimits {
  const d = DECODER_DEFAULTS;
  const maxImageBytes = intVar(env.MAX_IMAGE_BYTES, d.maxImageBytes, "MAX_IMAGE_BYTES");
  return {
    maxBodyBytes: intVar(env.MAX_BODY_BYTES, jsonBodyLimit(maxImageBytes), "MAX_BODY_BYTES"),
    maxImageBytes,
    maxNewTokens: intVar(env.MAX_NEW_TOKENS, d.maxNewTokens, "MAX_NEW_TOKENS"),
    rateLimit: {
      perMinute: intVar(env.RATE_LIMIT_RPM, d.rateLimitPerMinute, "RATE_LIMIT_RPM", 0),
      burst: intVar(env.RATE_LIMIT_BURST, d.rateLimitBurst, "RATE_LIMIT_BURST"),
    },
    corsOrigins: (env.CORS_ORIGINS ?? "").split(/[\s,]+/).filter((o) => o.length > 0),
    chatSystemMessages: systemMessagePolicy(env.CHAT_SYSTEM_MESSAGES),
    imageUrls: imageUrlPolicy(env.IMAGE_URL_ORIGINS),
    imageUrlTimeoutMs: 1000 * intVar(env.IMAGE_URL_TIMEOUT_S, IMAGE_URL_TIMEOUT_S, "IMAGE_URL_TIMEOUT_S"),
  };
}

/** The session-level limits of `env`. */
export function sessionLimits(env: SessionLimitsEnv): SessionLimits {
  const d = DECODER_DEFAULTS;
  return {
    maxPromptTokens: intVar(env.MAX_PROMPT_TOKENS, d.maxPromptTokens, "MAX_PROMPT_TOKENS"),
    contextTokens: intVar(env.MAX_CONTEXT_TOKENS, d.contextTokens, "MAX_CONTEXT_TOKENS"),
    maxRequests: intVar(env.MAX_SESSION_REQUESTS, d.maxSessionRequests, "MAX_SESSION_REQUESTS"),
    requestTimeoutMs: 1000 * intVar(env.REQUEST_TIMEOUT_S, d.requestTimeoutSeconds, "REQUEST_TIMEOUT_S"),
    idleTimeoutMs: 1000 * intVar(env.STREAM_IDLE_TIMEOUT_S, d.streamIdleTimeoutSeconds, "STREAM_IDLE_TIMEOUT_S"),
  };
}

/** The session limits when no var is set. */
export const DEFAULT_SESSION_LIMITS: SessionLimits = Object.freeze(sessionLimits({}));
