/** The decoder worker's bindings and vars (root wrangler.toml). */
import type { ModelEnv } from "../../shared/worker/model-store.ts";
import type VisionService from "../vision/index.ts";
import type { SessionObject } from "./session.ts";

/** Bindings and vars of the decoder worker (and its session Durable Objects). */
export interface DecoderEnv extends ModelEnv {
  /** Soft tokens written by the vision worker. */
  readonly SOFT_TOKENS: KVNamespace;
  /** One Durable Object per session. */
  readonly SESSIONS: DurableObjectNamespace<SessionObject>;
  /** The vision worker (service binding, RPC). */
  readonly VISION: Service<VisionService>;
  /** Idle time after which a session's stored state is deleted, in seconds. */
  readonly SESSION_TTL_S?: string;
  /** Largest max_tokens a request may ask for. */
  readonly MAX_NEW_TOKENS?: string;
}

/** Defaults for the vars above. */
export const DECODER_DEFAULTS = Object.freeze({
  sessionTtlSeconds: 24 * 3600,
  maxNewTokens: 512,
});
