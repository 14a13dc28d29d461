/** The decoder worker's bindings and vars (root wrangler.toml); defaults and parsing are in limits.ts. */
import type { ModelEnv } from "../../shared/worker/model-store.ts";
import type { VisionRpc } from "../../shared/api/vision-rpc.ts";
import type { RateLimiterObject } from "./rate-limiter.ts";
import type { SessionObject } from "./session.ts";

/** Bindings, vars and secrets of the decoder worker (and its Durable Objects). */
export interface DecoderEnv extends ModelEnv {
  /** "kernel" (default): decode steps in the WASM SIMD kernel (kernels/); "ort": in onnxruntime-web. */
  readonly DECODE?: string;
  /** Soft tokens written by the vision worker. */
  readonly SOFT_TOKENS: KVNamespace;
  /** One Durable Object per session. */
  readonly SESSIONS: DurableObjectNamespace<SessionObject>;
  /** One token bucket per API key (or client IP when open). */
  readonly RATE_LIMITS?: DurableObjectNamespace<RateLimiterObject>;
  /** Workers' rate limiting binding; used instead of RATE_LIMITS when bound. */
  readonly RATE_LIMITER?: RateLimit;
  /** The vision worker (service binding, RPC). */
  readonly VISION: Service<VisionRpc & Rpc.WorkerEntrypointBranded>;
  /** Secret: API keys separated by commas or whitespace. Unset = the API is open (local dev). */
  readonly API_KEYS?: string;
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
  /** Largest prompt, in text tokens (bos, prefix and "\n"; image tokens not counted). */
  readonly MAX_PROMPT_TOKENS?: string;
  /** Largest max_tokens a request may ask for. */
  readonly MAX_NEW_TOKENS?: string;
  /** The model's context: prompt (image tokens included) + max_tokens must fit. */
  readonly MAX_CONTEXT_TOKENS?: string;
  /** Requests one session may hold at once, running and queued. */
  readonly MAX_SESSION_REQUESTS?: string;
  /** The most time one request may hold (or wait for) its session, in seconds. */
  readonly REQUEST_TIMEOUT_S?: string;
  /** A stream whose client reads nothing for this long is ended and its session freed, in seconds. */
  readonly STREAM_IDLE_TIMEOUT_S?: string;
  /** Chat system/developer messages: "ignore" (default: dropped, named in `x-paligemma-ignored`) or "reject" (422). */
  readonly CHAT_SYSTEM_MESSAGES?: string;
  /** Idle time after which a session's stored state is deleted, in seconds. */
  readonly SESSION_TTL_S?: string;
}
