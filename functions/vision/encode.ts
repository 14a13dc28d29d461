/**
 * The vision stage as a service: image bytes → (cache check) → preprocess → SigLIP + projector → soft tokens in
 * KV. An image already stored for this model, preprocessing version and owner is not decoded or encoded again.
 * Asked `inline`, the reply also carries the soft tokens it computed, for the session of the same request.
 *
 * Cheap checks come first, before the model loads or anything is hashed: size in bytes, format and declared
 * pixels (from the header). The decoders then bound their own work by the declared size (shared/image).
 */
import { INLINE_SOFT_TOKEN_BYTES, type EncodeOptions, type EncodeReply, type ImageRecord } from "../../shared/api/vision-rpc.ts";
import { errorData, InputError } from "../../shared/errors.ts";
import { DECODABLE_FORMATS, preprocessImage, sniffImage } from "../../shared/image/index.ts";
import { FORMAT_NAMES } from "../../shared/image/sniff.ts";
import { sha256Hex } from "../../shared/worker/hash.ts";
import { asSoftTokenDtype } from "../../shared/worker/soft-token-codec.ts";
import { imageIdFor, type EncodedSoftTokens, type SoftTokenStore } from "../../shared/worker/soft-token-store.ts";
import type { ServingModel } from "../../shared/worker/serving-model.ts";

/** What encoding needs: the model (loaded lazily), the KV store and the limits. */
export interface EncodeDeps {
  readonly model: () => Promise<ServingModel>;
  readonly store: SoftTokenStore;
  /** Largest image file, in bytes. */
  readonly maxBytes: number;
  /** Largest width × height. */
  readonly maxPixels: number;
}

/** Refuses, before any decoding, a file that is empty, too big, of another format or too many pixels. */
function admit(deps: EncodeDeps, bytes: Uint8Array): { width: number; height: number } {
  if (bytes.length === 0) throw new InputError("invalid_request", "the request has no image", "image");
  if (bytes.length > deps.maxBytes) throw new InputError("payload_too_large", `the image is larger than ${deps.maxBytes} bytes`, "image");
  const { format, width, height } = sniffImage(bytes);
  if (!DECODABLE_FORMATS.includes(format)) {
    throw new InputError("unsupported_media_type", `${FORMAT_NAMES[format]} images are not supported; send PNG, JPEG, WebP or GIF`, "image");
  }
  if (width * height > deps.maxPixels) {
    throw new InputError(
      "payload_too_large",
      `the image is ${width}×${height} = ${width * height} pixels, over the limit of ${deps.maxPixels}; downscale it (the model sees a small square)`,
      "image",
    );
  }
  return { width, height };
}

/** Encodes one image (or finds it already stored). Throws InputError for a bad image. */
export async function encodeImage(deps: EncodeDeps, bytes: Uint8Array, options: EncodeOptions = {}): Promise<ImageRecord> {
  return (await encodeStored(deps, bytes, options)).image;
}

/** {@link encodeImage}, also returning the soft tokens it computed when `options.inline` asks (and they fit). */
async function encodeStored(deps: EncodeDeps, bytes: Uint8Array, options: EncodeOptions): Promise<{ image: ImageRecord; soft?: EncodedSoftTokens }> {
  const size = admit(deps, bytes);
  const model = await deps.model();
  const { manifest } = model;
  const owner = options.owner ?? "";
  // an adapter that changes the vision tower makes other soft tokens: they are stored as its model's
  const adapter = options.adapter && model.manifest.adapters?.find((a) => a.name === options.adapter)?.vision ? options.adapter : null;
  const visionModel = adapter ? `${manifest.id}:${adapter}` : manifest.id;
  const ref = { imageSha256: await sha256Hex(bytes), model: visionModel, preprocess: model.preprocessVersion, owner };
  const imageId = await imageIdFor(ref);
  const existing = options.force ? null : await deps.store.header(imageId);
  if (existing) return { image: { image_id: imageId, cached: true, model: visionModel, tokens: existing.tokens } };

  const pixels = await preprocessImage(bytes, manifest.preprocess, { maxPixels: deps.maxPixels }); // [1, 3, S, S]
  const soft = await model.engine.encodeImage(pixels, { adapter }); // [tokens, dim], projector output
  const declared = manifest.softTokens;
  if (soft.tokens !== declared.tokens || soft.dim !== declared.dim) {
    throw new Error(`vision stage gave [${soft.tokens}, ${soft.dim}] soft tokens, the manifest declares [${declared.tokens}, ${declared.dim}]`);
  }
  const stored = await deps.store.write(imageId, ref, soft, asSoftTokenDtype(declared.dtype), size);
  const image = { image_id: imageId, cached: false, model: visionModel, tokens: soft.tokens };
  return options.inline && stored.bytes.length <= INLINE_SOFT_TOKEN_BYTES ? { image, soft: stored } : { image };
}

/** The RPC form of {@link encodeImage} (shared/api/vision-rpc.ts): errors travel as data, keeping their type and status. */
export async function encodeReply(deps: EncodeDeps, bytes: Uint8Array, options: EncodeOptions = {}): Promise<EncodeReply> {
  try {
    return { ok: true, ...(await encodeStored(deps, bytes, options)) };
  } catch (err) {
    const error = errorData(err);
    if (error.status >= 500) console.error("vision encode:", err);
    return { ok: false, error };
  }
}
