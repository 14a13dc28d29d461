/**
 * The contract between the two workers: what the decoder worker asks the vision worker over its service
 * binding (`VISION`, RPC) and what comes back. Neither worker imports the other; both import this.
 *
 *   decoder: env.VISION.encode(bytes, {owner, force, inline})  ──RPC──▶  vision: encode → EncodeReply
 *
 * With `inline`, the soft tokens the call computed come back in the reply and the decoder hands them to the
 * session in the same request: no KV read, which across locations is only eventually consistent. KV stays the
 * `image_id` cache (the vision worker still writes it first).
 *
 * Errors cross as data ({@link ErrorData}: RPC carries no error classes); the decoder throws them again with
 * `errorFromData` (shared/errors.ts).
 */
import type { EngineMemory } from "../engine/types.ts";
import type { ErrorData } from "../errors.ts";
import type { EncodedSoftTokens } from "../worker/soft-token-store.ts";

/**
 * Largest soft-token tensor sent inline (bytes in the manifest's dtype): under Workers RPC's 32 MiB message
 * limit with room for the rest. Larger ones (an 896 px model in float32) are read from KV by the session.
 */
export const INLINE_SOFT_TOKEN_BYTES = 24 * 1024 * 1024;

/** An encoded (or already stored) image; also what `POST /v1/images` answers. */
export interface ImageRecord {
  readonly image_id: string;
  readonly cached: boolean;
  readonly model: string;
  readonly tokens: number;
}

/** Per-request options of an encode. */
export interface EncodeOptions {
  /** Owner id of the caller's API key ("" or absent without keys): part of the image id. */
  readonly owner?: string;
  /** Encode and store again even when the header says the image is stored (its chunks went missing). */
  readonly force?: boolean;
  /** Return the soft tokens in the reply when this call computes them (not when they were already stored). */
  readonly inline?: boolean;
  /** Encode through this LoRA adapter's vision tower and projector updates (one that has them). */
  readonly adapter?: string;
}

/** The answer to an encode: the image's record, or its failure as data, keeping its type and status. */
export type EncodeReply =
  | { readonly ok: true; readonly image: ImageRecord; /** With `inline`: what this call computed and stored. */ readonly soft?: EncodedSoftTokens }
  | { readonly ok: false; readonly error: ErrorData };

/** What the vision worker serves and which engine runs it (`GET /v1/info`). */
export interface VisionInfo {
  readonly model: string;
  /** The encoder's backends and memory in the isolate that answered (the model is loaded to answer). */
  readonly engine: EngineMemory | null;
}

/** The vision worker's RPC methods (its `WorkerEntrypoint` implements this). */
export interface VisionRpc {
  /** Encodes an image (or finds it stored) for `options.owner` and returns its id. */
  encode(bytes: Uint8Array, options?: EncodeOptions): Promise<EncodeReply>;
  /** The served model and its engine. */
  describe(): Promise<VisionInfo>;
}
