/**
 * The vision worker: HTTP (`POST /v1/images`) and a typed RPC entry point (`encode`) that the decoder worker
 * calls over its service binding, for inline images and for its own `POST /v1/images`.
 */
import { WorkerEntrypoint } from "cloudflare:workers";
import { createVisionApp } from "./app.ts";
import { visionDeps } from "./deps.ts";
import type { EncodeOptions, EncodeReply, VisionInfo, VisionRpc } from "../../shared/api/vision-rpc.ts";
import { encodeReply } from "./encode.ts";
import type { VisionEnv } from "./env.ts";

const app = createVisionApp(visionDeps);

/** The vision worker's entry point: HTTP, and the RPC methods of {@link VisionRpc}. */
export default class VisionService extends WorkerEntrypoint<VisionEnv> implements VisionRpc {
  override fetch(request: Request): Response | Promise<Response> {
    return app.fetch(request, this.env, this.ctx);
  }

  /** Encodes an image (or finds it stored) for `options.owner` and returns its id. */
  async encode(bytes: Uint8Array, options: EncodeOptions = {}): Promise<EncodeReply> {
    return encodeReply(visionDeps(this.env), bytes, options);
  }

  /** The served model and its engine (loads the model, as the first encode would). */
  async describe(): Promise<VisionInfo> {
    const { manifest, engine } = await visionDeps(this.env).model();
    return { model: manifest.id, engine: engine.memory?.() ?? null };
  }
}
