/**
 * The vision stage as a service: image bytes → (cache check) → preprocess → SigLIP + projector → soft tokens in
 * KV. An image already stored for this model and preprocessing version is not decoded or encoded again.
 */
import { InputError } from "../../shared/errors.ts";
import { preprocessImage, sniffImage } from "../../shared/image/index.ts";
import { sha256Hex } from "../../shared/worker/hash.ts";
import { errorResponseBody } from "../../shared/worker/http-errors.ts";
import { asSoftTokenDtype } from "../../shared/worker/soft-token-codec.ts";
import { imageIdFor, type SoftTokenStore } from "../../shared/worker/soft-token-store.ts";
import type { ServingModel } from "../../shared/worker/serving-model.ts";

/** What `POST /v1/images` answers. */
export interface ImageRecord {
  readonly image_id: string;
  readonly cached: boolean;
  readonly model: string;
  readonly tokens: number;
}

/** What encoding needs: the model (loaded lazily), the KV store and the pixel limit. */
export interface EncodeDeps {
  readonly model: () => Promise<ServingModel>;
  readonly store: SoftTokenStore;
  readonly maxPixels: number;
}

/** Encodes one image (or finds it already stored). Throws InputError for a bad image. */
export async function encodeImage(deps: EncodeDeps, bytes: Uint8Array): Promise<ImageRecord> {
  if (bytes.length === 0) throw new InputError("invalid_request", "the request has no image", "image");
  sniffImage(bytes); // format and header checks before anything is hashed, stored or decoded
  const model = await deps.model();
  const { manifest } = model;
  const ref = { imageSha256: await sha256Hex(bytes), model: manifest.id, preprocess: model.preprocessVersion };
  const imageId = await imageIdFor(ref);
  const existing = await deps.store.header(imageId);
  if (existing) return { image_id: imageId, cached: true, model: manifest.id, tokens: existing.tokens };

  const pixels = preprocessImage(bytes, manifest.preprocess, { maxPixels: deps.maxPixels }); // [1, 3, S, S]
  const soft = await model.engine.encodeImage(pixels); // [tokens, dim], projector output
  const declared = manifest.softTokens;
  if (soft.tokens !== declared.tokens || soft.dim !== declared.dim) {
    throw new Error(`vision stage gave [${soft.tokens}, ${soft.dim}] soft tokens, the manifest declares [${declared.tokens}, ${declared.dim}]`);
  }
  await deps.store.put(imageId, ref, soft, asSoftTokenDtype(declared.dtype));
  return { image_id: imageId, cached: false, model: manifest.id, tokens: soft.tokens };
}

/** The RPC form of {@link encodeImage}: errors travel as data, keeping their type and status. */
export type EncodeReply =
  | { readonly ok: true; readonly image: ImageRecord }
  | { readonly ok: false; readonly error: { status: number; type: string; message: string; param?: string } };

/** {@link encodeImage} with its errors returned as data (RPC does not carry InputError's fields). */
export async function encodeReply(deps: EncodeDeps, bytes: Uint8Array): Promise<EncodeReply> {
  try {
    return { ok: true, image: await encodeImage(deps, bytes) };
  } catch (err) {
    const { status, body } = errorResponseBody(err);
    if (status >= 500) console.error("vision encode:", err);
    return { ok: false, error: { status, ...body.error } };
  }
}
