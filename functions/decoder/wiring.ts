/** Production wiring of the decoder routes: the vision worker's service binding and the session namespace. */
import { intVar } from "../../shared/worker/http-errors.ts";
import type { DecoderDeps } from "./deps.ts";
import { DECODER_DEFAULTS, type DecoderEnv } from "./env.ts";

/** The routes' dependencies for one request's env. */
export function decoderDeps(env: DecoderEnv): DecoderDeps {
  return {
    modelId: env.MODEL_ID,
    maxNewTokens: intVar(env.MAX_NEW_TOKENS, DECODER_DEFAULTS.maxNewTokens, "MAX_NEW_TOKENS"),
    encodeImage: (bytes) => env.VISION.encode(bytes),
    forwardImage: (request) => env.VISION.fetch(request),
    session: (name) => env.SESSIONS.get(env.SESSIONS.idFromName(name)),
  };
}
