/**
 * Image soft tokens in Workers KV, written by the vision worker and read by the decoder's sessions.
 *
 * Keys (see README "Storage layout"):
 *   soft/<image_id>        header: JSON {@link SoftTokenHeader} (small, so an existence check is cheap)
 *   soft/<image_id>/<i>    chunk i of the tensor bytes, each at most `maxChunkBytes` (KV values are ≤ 25 MiB)
 * `image_id` = "img_" + sha256(image sha256 ‖ model id ‖ preprocessing version): two models or two
 * preprocessing versions never share an entry. With API keys, the owner (see shared/worker/auth.ts) is part of
 * the id and recorded in the header, so one key's images are neither found nor usable by another.
 * Chunks are written before the header, so a reader that sees a header finds its chunks (until the TTL expires
 * them; a missing chunk reads as a miss). A failed write deletes the chunks it wrote: no half-written entry.
 */
import { ModelFormatError } from "../errors.ts";
import type { SoftTokens } from "../engine/types.ts";
import { sha256Hex } from "./hash.ts";
import { bytesPerElement, decodeSoftTokens, encodeSoftTokens, type SoftTokenDtype } from "./soft-token-codec.ts";

/** Workers KV's largest value (25 MiB). */
export const KV_VALUE_LIMIT = 25 * 1024 * 1024;
/** Default chunk size: under the KV limit with room to spare. */
export const DEFAULT_CHUNK_BYTES = 24 * 1024 * 1024;
/** Workers KV's shortest `expirationTtl`. */
export const MIN_TTL_SECONDS = 60;

const FORMAT = "paligemma-soft-tokens/1";

/** What the header records about one stored image. */
export interface SoftTokenHeader {
  readonly format: typeof FORMAT;
  readonly image_id: string;
  readonly model: string;
  /** Preprocessing version the pixels were made with. */
  readonly preprocess: string;
  /** SHA-256 of the original image bytes. */
  readonly image_sha256: string;
  readonly dtype: SoftTokenDtype;
  /** The convention the values follow: the projector's output, entering the decoder unscaled. */
  readonly scaling: "projector_output";
  readonly tokens: number;
  readonly dim: number;
  /** Owner id of the API key that stored it ("" or absent: stored without keys, usable by anyone). */
  readonly owner?: string;
  /** The original image's size in pixels (detection boxes are scaled to it); absent in older entries. */
  readonly width?: number;
  readonly height?: number;
  readonly byte_length: number;
  readonly chunks: number;
  /** Unix milliseconds. */
  readonly created_at: number;
}

/**
 * Soft tokens as they were stored: the header and the tensor bytes in its dtype. The vision worker's encode
 * reply carries this inline (shared/api/vision-rpc.ts), so the session of the same request needs no KV read.
 */
export interface EncodedSoftTokens {
  readonly header: SoftTokenHeader;
  readonly bytes: Uint8Array;
}

/** Parses {@link EncodedSoftTokens} back to float32 `[tokens, dim]` (throws ModelFormatError when they disagree). */
export function decodeEncoded(entry: EncodedSoftTokens): { header: SoftTokenHeader; soft: SoftTokens } {
  const { header, bytes } = entry;
  if (header.format !== FORMAT) throw new ModelFormatError(`soft tokens ${header.image_id}: unknown format ${header.format}`);
  if (bytes.length !== header.byte_length) {
    throw new ModelFormatError(`soft tokens ${header.image_id}: ${bytes.length} bytes, header says ${header.byte_length}`);
  }
  return { header, soft: decodeSoftTokens(bytes, header.dtype, header.tokens, header.dim) };
}

/** The identity of an image's soft tokens. */
export interface SoftTokenRef {
  readonly imageSha256: string;
  readonly model: string;
  readonly preprocess: string;
  /** Owner id of the storing API key; "" or absent without keys. */
  readonly owner?: string;
}

/** The image id for an image under one model and preprocessing version (and owner, when there is one). */
export async function imageIdFor(ref: SoftTokenRef): Promise<string> {
  const owner = ref.owner ? `\n${ref.owner}` : "";
  return `img_${await sha256Hex(`${ref.imageSha256}\n${ref.model}\n${ref.preprocess}${owner}`)}`;
}

/** Store settings: entry lifetime and chunk size. */
export interface SoftTokenStoreOptions {
  readonly ttlSeconds: number;
  readonly maxChunkBytes?: number;
}

/** Reads and writes soft tokens in one KV namespace. */
export class SoftTokenStore {
  private readonly ttl: number;
  private readonly chunkBytes: number;

  /** @param kv the namespace shared by the vision and decoder workers */
  constructor(
    private readonly kv: KVNamespace,
    options: SoftTokenStoreOptions,
  ) {
    this.ttl = Math.max(MIN_TTL_SECONDS, Math.floor(options.ttlSeconds));
    this.chunkBytes = options.maxChunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (!(this.chunkBytes > 0 && this.chunkBytes <= KV_VALUE_LIMIT)) {
      throw new RangeError(`maxChunkBytes must be in (0, ${KV_VALUE_LIMIT}]`);
    }
  }

  /** The header of a stored image, or null when there is none (never stored, or expired). */
  async header(imageId: string): Promise<SoftTokenHeader | null> {
    const header = await this.kv.get<SoftTokenHeader>(headerKey(imageId), "json");
    if (header === null) return null;
    if (header.format !== FORMAT) throw new ModelFormatError(`soft tokens ${imageId}: unknown format ${header.format}`);
    return header;
  }

  /** Stores soft tokens in `dtype`, chunked; returns the header written. */
  async put(
    imageId: string,
    ref: SoftTokenRef,
    soft: SoftTokens,
    dtype: SoftTokenDtype,
    size?: { readonly width: number; readonly height: number },
  ): Promise<SoftTokenHeader> {
    return (await this.write(imageId, ref, soft, dtype, size)).header;
  }

  /** {@link put}, returning the header and the bytes written (what an encode reply carries inline). */
  async write(
    imageId: string,
    ref: SoftTokenRef,
    soft: SoftTokens,
    dtype: SoftTokenDtype,
    size?: { readonly width: number; readonly height: number },
  ): Promise<EncodedSoftTokens> {
    const bytes = encodeSoftTokens(soft, dtype);
    const chunks = Math.max(1, Math.ceil(bytes.length / this.chunkBytes));
    const options = { expirationTtl: this.ttl };
    const header: SoftTokenHeader = {
      format: FORMAT,
      image_id: imageId,
      model: ref.model,
      preprocess: ref.preprocess,
      image_sha256: ref.imageSha256,
      dtype,
      scaling: "projector_output",
      tokens: soft.tokens,
      dim: soft.dim,
      ...(ref.owner ? { owner: ref.owner } : {}),
      ...(size ? { width: size.width, height: size.height } : {}),
      byte_length: bytes.length,
      chunks,
      created_at: Date.now(),
    };
    try {
      await Promise.all(
        Array.from({ length: chunks }, (_, i) =>
          this.kv.put(chunkKey(imageId, i), bytes.slice(i * this.chunkBytes, (i + 1) * this.chunkBytes), options),
        ),
      );
      await this.kv.put(headerKey(imageId), JSON.stringify(header), options);
    } catch (err) {
      await this.remove(imageId, chunks);
      throw err;
    }
    return { header, bytes };
  }

  /** Deletes an entry (header first, so no reader sees it half-gone), best effort. */
  async remove(imageId: string, chunks: number): Promise<void> {
    const keys = [headerKey(imageId), ...Array.from({ length: chunks }, (_, i) => chunkKey(imageId, i))];
    for (const key of keys) await this.kv.delete(key).catch(() => undefined);
  }

  /** Reads soft tokens back as float32, or null when the entry (or any chunk of it) is gone. */
  async get(imageId: string): Promise<{ header: SoftTokenHeader; soft: SoftTokens } | null> {
    const header = await this.header(imageId);
    if (header === null) return null;
    const parts = await Promise.all(
      Array.from({ length: header.chunks }, (_, i) => this.kv.get(chunkKey(imageId, i), "arrayBuffer")),
    );
    if (parts.some((p) => p === null)) return null;
    const bytes = new Uint8Array(header.byte_length);
    let offset = 0;
    for (const part of parts as ArrayBuffer[]) {
      if (offset + part.byteLength > bytes.length) break;
      bytes.set(new Uint8Array(part), offset);
      offset += part.byteLength;
    }
    const expected = header.tokens * header.dim * bytesPerElement(header.dtype);
    if (offset !== header.byte_length || expected !== header.byte_length) {
      throw new ModelFormatError(`soft tokens ${imageId}: ${offset} bytes stored, header says ${header.byte_length}`);
    }
    return { header, soft: decodeSoftTokens(bytes, header.dtype, header.tokens, header.dim) };
  }
}

function headerKey(imageId: string): string {
  return `soft/${imageId}`;
}

function chunkKey(imageId: string, index: number): string {
  return `soft/${imageId}/${index}`;
}
