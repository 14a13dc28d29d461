/**
 * The vision worker: HTTP (`POST /v1/images`) and a typed RPC entry point (`encode`) that the decoder worker
 * calls over its service binding, for inline images and for its own `POST /v1/images`.
 */
import { WorkerEntrypoint } from "cloudflare:workers";
import { createVisionApp } from "./app.ts";
import { visionDeps } from "./deps.ts";
import { encodeReply, type EncodeOptions, type EncodeReply } from "./encode.ts";
import type { VisionEnv } from "./env.ts";

const app = createVisionApp(visionDeps);

/** The vision worker's entry point. */
export default class VisionService extends WorkerEntrypoint<VisionEnv> {
  override fetch(request: Request): Response | Promise<Response> {
    return app.fetch(request, this.env, this.ctx);
  }

  /** Encodes an image (or finds it stored) for `options.owner` and returns its id. */
  async encode(bytes: Uint8Array, options: EncodeOptions = {}): Promise<EncodeReply> {
    return encodeReply(visionDeps(this.env), bytes, options);
  }
}
