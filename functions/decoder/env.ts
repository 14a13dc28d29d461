/**
 * The decoder worker's bindings, vars and secrets (root wrangler.toml). Each part declares the slice it reads
 * (limits.ts, rate-limiter.ts, session.ts) and this is their union, so no part imports this file; defaults and
 * parsing are in limits.ts.
 */
import type { VisionRpc } from "../../shared/api/vision-rpc.ts";
import type { WorkerLimitsEnv } from "./limits.ts";
import type { RateLimitEnv } from "./rate-limiter.ts";
import type { SessionEnv, SessionObject } from "./session.ts";

/** Bindings, vars and secrets of the decoder worker (and its Durable Objects). */
export interface DecoderEnv extends SessionEnv, WorkerLimitsEnv, RateLimitEnv {
  /** One Durable Object per session. */
  readonly SESSIONS: DurableObjectNamespace<SessionObject>;
  /** The vision worker (service binding, RPC). */
  readonly VISION: Service<VisionRpc & Rpc.WorkerEntrypointBranded>;
  /** Secret: API keys separated by commas or whitespace. Unset = the API is open (local dev). */
  readonly API_KEYS?: string;
}
