/**
 * The decoder's configurable limits: wrangler vars (root wrangler.toml) with defaults. A var that is set but
 * not a number fails every request with a 500 naming it: a deployment error, not something to guess around.
 */
import type { SystemMessagePolicy } from "../../shared/api/chat-schema.ts";
import { MAX_IMAGE_BYTES } from "../../shared/api/image-input.ts";
import { ConfigError, echo } from "../../shared/errors.ts";
import { intVar } from "../../shared/worker/env-vars.ts";
import type { BucketLimit } from "../../shared/worker/token-bucket.ts";
import type { DecoderEnv } from "./env.ts";

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
export function decoderLimits(env: Partial<DecoderEnv>): DecoderLimits {
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
  };
}

/** The session-level limits of `env`. */
export function sessionLimits(env: Partial<DecoderEnv>): SessionLimits {
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
