/**
 * What the decoder's routes need from the world, as an interface: the production wiring (service binding to
 * the vision worker, session and rate-limit Durable Objects, the API_KEYS secret) lives in wiring.ts; Node
 * route tests pass in-process fakes.
 */
import type { EncodeOptions, EncodeReply, VisionInfo } from "../../shared/api/vision-rpc.ts";
import type { ListedStage } from "../../shared/worker/pipeline-model.ts";
import type { ApiKeys } from "../../shared/worker/auth.ts";
import type { AdapterListing } from "../../shared/model/adapter-manifest.ts";
import type { BucketLimit, RateDecision } from "../../shared/worker/token-bucket.ts";
import type { DecoderLimits } from "./limits.ts";
import type { SessionInfo, SessionReply, SessionRequest } from "./session-types.ts";

/** The RPC methods of one session. */
export interface SessionApi {
  generate(req: SessionRequest): Promise<SessionReply>;
  /** Stops the run `runId` if it is still going (its client went away); a finished or unknown run is ignored. */
  cancel(runId: string): Promise<void>;
  describe(): Promise<SessionInfo>;
  reset(): Promise<void>;
}

/** Everything the decoder routes call out to. */
export interface DecoderDeps {
  /** The served model's public id. */
  readonly modelId: string;
  /** The served model's LoRA adapters (its manifest's list). */
  adapters(): Promise<readonly AdapterListing[]>;
  /** Body, image and token limits, rate limit and CORS settings. */
  readonly limits: DecoderLimits;
  /** The configured API keys; null when none are (the API is open). */
  apiKeys(): Promise<ApiKeys | null>;
  /** Takes one request from `key`'s rate-limit bucket. */
  rateLimit(key: string, limit: BucketLimit): Promise<RateDecision>;
  /** Encodes an image in the vision worker (or finds it stored). */
  encodeImage(bytes: Uint8Array, options: EncodeOptions): Promise<EncodeReply>;
  /** The vision worker's model and engine. */
  describeVision(): Promise<VisionInfo>;
  /** The model's stages and whether each is loaded (`GET /v1/models`); absent: not listed. */
  stages?(): Promise<readonly ListedStage[]>;
  /** The session Durable Object named `name` (already scoped to its owner). */
  session(name: string): SessionApi;
  /** Fetches a remote image URL (the Workers global fetch; route tests pass a mock). */
  readonly fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /** A fresh session object for one unnamed request: nothing can name it again, and it stores nothing. */
  transientSession(): SessionApi;
}
