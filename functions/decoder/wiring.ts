/** Production wiring of the decoder routes: the vision worker's service binding, the Durable Objects, the keys. */
import { parseApiKeys } from "../../shared/worker/auth.ts";
import { listStages } from "../../shared/worker/pipeline-model.ts";
import type { DecoderDeps } from "./deps.ts";
import type { DecoderEnv } from "./env.ts";
import { decoderLimits } from "./limits.ts";
import { takeRateLimit } from "./rate-limiter.ts";
import { servedAdapters } from "../../shared/worker/served-adapters.ts";

/** The routes' dependencies for one request's env. */
export function decoderDeps(env: DecoderEnv): DecoderDeps {
  return {
    modelId: env.MODEL_ID,
    adapters: () => servedAdapters(env),
    limits: decoderLimits(env),
    apiKeys: () => parseApiKeys(env.API_KEYS),
    rateLimit: (key, limit) => takeRateLimit(env, key, limit),
    encodeImage: (bytes, options) => env.VISION.encode(bytes, options),
    describeVision: () => env.VISION.describe(),
    fetch: (url, init) => fetch(url, init),
    stages: () => listStages(env),
    session: (name) => env.SESSIONS.get(env.SESSIONS.idFromName(name)),
    transientSession: () => env.SESSIONS.get(env.SESSIONS.newUniqueId()),
  };
}
