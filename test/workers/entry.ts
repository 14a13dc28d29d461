/**
 * The test worker's entry: the real session Durable Object, and subclasses with a fake engine (instant, or
 * slow and endless for cancellation tests). The fakes still use the real manifest and tokenizer from assets.
 * Its fetch handler is the real decoder app over the slow sessions. SegmentSessionObject answers a segmentation
 * (the VQ-VAE golden's codes) and decodes masks with the golden's random-weight decoder (a binding).
 */
import { createDecoderApp } from "../../functions/decoder/app.ts";
import { DEFAULT_SESSION_LIMITS, type SessionLimits } from "../../functions/decoder/limits.ts";
import { RateLimiterObject } from "../../functions/decoder/rate-limiter.ts";
import { SessionObject, type SessionEnv } from "../../functions/decoder/session.ts";
import { decoderDeps } from "../../functions/decoder/wiring.ts";
import { ModelCache } from "../../shared/worker/model-cache.ts";
import { modelStoreFor } from "../../shared/worker/model-store.ts";
import { servingModel, loadTokenizer, type ServingModel } from "../../shared/worker/serving-model.ts";
import { parseManifest } from "../../shared/model/manifest.ts";
import type { DecoderEnv } from "../../functions/decoder/env.ts";
import { FakeEngine, endless, type FakeEngineOptions } from "../serving/support/fake-engine.ts";
import { maskDecoder, vaeFromNpz, type MaskDecoder } from "../../shared/masks/index.ts";
import { SEGMENT_ANSWER } from "./segment-answer.ts";
import { fromBase64 } from "./support.ts";

export { RateLimiterObject, SessionObject };

/** Fake models of this isolate, by kind. */
const fakes = new ModelCache<ServingModel>();

async function fakeModel(env: SessionEnv, options: FakeEngineOptions): Promise<ServingModel> {
  const store = modelStoreFor(env);
  const manifest = parseManifest(JSON.parse(new TextDecoder().decode((await store.get("manifest.json"))!)));
  return servingModel(manifest, new FakeEngine(manifest.config, options), await loadTokenizer(store, manifest));
}

/** A session whose engine answers "a green circle" instantly. */
export class FakeSessionObject extends SessionObject {
  protected override loadModel(): Promise<ServingModel> {
    return fakes.get("fast", () => fakeModel(this.env, {}));
  }
}

/** The golden's mask decoder of this isolate (immutable weights). */
let goldenDecoder: Promise<MaskDecoder> | null = null;

/** A session whose engine answers {@link SEGMENT_ANSWER} and whose model has the golden's VQ-VAE decoder. */
export class SegmentSessionObject extends SessionObject {
  protected override async loadModel(): Promise<ServingModel> {
    return fakes.get("segment", async () => {
      const model = await fakeModel(this.env, {});
      const ids = SEGMENT_ANSWER.ids(model.tokenizer!);
      return { ...model, engine: new FakeEngine(model.manifest.config, { answer: () => ids }) };
    });
  }

  protected override loadMasks(): Promise<MaskDecoder | null> {
    const npz = (this.env as DecoderEnv & { VQVAE_NPZ: string }).VQVAE_NPZ;
    goldenDecoder ??= vaeFromNpz(fromBase64(npz), "vae-random.npz").then(maskDecoder);
    return goldenDecoder;
  }
}

/** A session whose engine never emits eos and takes 10 ms per token. */
export class SlowSessionObject extends SessionObject {
  protected override loadModel(): Promise<ServingModel> {
    return fakes.get("slow", () => fakeModel(this.env, { answer: endless, stepDelayMs: 10 }));
  }
}

/** The slow engine with short limits: idle 300 ms, 1.5 s per request, 2 requests per session. */
export class QuickTimeoutSessionObject extends SlowSessionObject {
  protected override limits(): SessionLimits {
    return { ...DEFAULT_SESSION_LIMITS, idleTimeoutMs: 300, requestTimeoutMs: 1500, maxRequests: 2 };
  }
}

/** The real decoder app, with its sessions on the slow fake engine (for HTTP-level cancellation tests). */
const app = createDecoderApp((env) => {
  const slow = (env as DecoderEnv & { SLOW_SESSIONS: DurableObjectNamespace<SlowSessionObject> }).SLOW_SESSIONS;
  return { ...decoderDeps(env), session: (name) => slow.get(slow.idFromName(name)) };
});

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<DecoderEnv>;
