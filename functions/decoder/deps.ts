/**
 * What the decoder's routes need from the world, as an interface: the production wiring (service binding to
 * the vision worker, session Durable Objects) lives in index.ts; Node route tests pass in-process fakes.
 */
import type { EncodeReply } from "../vision/encode.ts";
import type { SessionInfo, SessionReply, SessionRequest } from "./session-types.ts";

/** The RPC methods of one session. */
export interface SessionApi {
  generate(req: SessionRequest): Promise<SessionReply>;
  describe(): Promise<SessionInfo>;
  reset(): Promise<void>;
}

/** Everything the decoder routes call out to. */
export interface DecoderDeps {
  /** The served model's public id. */
  readonly modelId: string;
  /** Largest `max_tokens` accepted. */
  readonly maxNewTokens: number;
  /** Encodes an image in the vision worker (or finds it stored). */
  encodeImage(bytes: Uint8Array): Promise<EncodeReply>;
  /** Passes `POST /v1/images` through to the vision worker. */
  forwardImage(request: Request): Promise<Response>;
  /** The session named `name`. */
  session(name: string): SessionApi;
}
