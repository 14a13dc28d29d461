/**
 * The decoder worker for the mask end-to-end tests (`wrangler dev` through {@link startSegmentServer}): the
 * real app, rate limiter and session object, whose model answers `segment …` prompts with the VQ-VAE golden's
 * codes (the shapes model was never trained to segment). Masks are decoded by the real path: the session
 * loads `vae-decoder.bin` named by the model's manifest from static assets.
 */
import worker from "../../../functions/decoder/index.ts";
import { SessionObject as RealSessionObject } from "../../../functions/decoder/session.ts";
import { ModelCache } from "../../../shared/worker/model-cache.ts";
import type { ServingModel } from "../../../shared/worker/serving-model.ts";
import { SEGMENT_ANSWER } from "../../workers/segment-answer.ts";
import { ScriptedSegmentEngine } from "./scripted-segments.ts";

export { RateLimiterObject } from "../../../functions/decoder/rate-limiter.ts";

const scripted = new ModelCache<ServingModel>();

/** The session object with segment prompts scripted. */
export class SessionObject extends RealSessionObject {
  protected override loadModel(): Promise<ServingModel> {
    return scripted.get("segments", async () => {
      const real = await super.loadModel();
      return { ...real, engine: new ScriptedSegmentEngine(real.engine, real.tokenizer!, SEGMENT_ANSWER.ids(real.tokenizer!)) };
    });
  }
}

export default worker;
