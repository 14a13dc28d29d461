/**
 * Images inside JSON requests: a base64 string or a `data:` URL (RFC 2397) in `image`; in `image_url` (native) and
 * a chat `image_url` part, also a remote URL, which the decoder fetches under its limits (remote-image.ts).
 */
import { echo, InputError } from "../errors.ts";

/** Default largest image, in bytes (after base64 decoding); a deployment sets its own with `MAX_IMAGE_BYTES`. */
export const MAX_IMAGE_BYTES = 10 * 1024 * 1024;

/**
 * Media types the vision worker decodes (shared/image: an animated WebP or GIF gives its first frame). BMP is
 * recognised by its signature but refused with 415.
 */
export const IMAGE_MEDIA_TYPES: readonly string[] = Object.freeze(["image/png", "image/jpeg", "image/webp", "image/gif"]);

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Decodes a request's `image` string (plain base64 or `data:image/…;base64,…`, any case) to bytes.
 * Throws InputError 400 for malformed input, 415 for a data URL of another type, 413 for more than `maxBytes`,
 * 422 for a remote URL (those go in `image_url`: {@link imageSource}).
 */
export function decodeImageString(
  value: string,
  param: string,
  maxBytes: number = MAX_IMAGE_BYTES,
): { bytes: Uint8Array; mediaType: string | null } {
  if (/^https?:\/\//i.test(value)) {
    throw new InputError("unprocessable", `${param} takes base64 or a data URL (data:image/png;base64,...); send a remote URL as image_url`, param);
  }
  let mediaType: string | null = null;
  let payload = value;
  if (/^data:/i.test(value)) {
    // RFC 2397 / RFC 3986 §3.1: the scheme, the media type and ";base64" are case-insensitive.
    const comma = value.indexOf(",");
    const header = comma < 0 ? "" : value.slice(5, comma).toLowerCase();
    if (comma < 0 || !header.endsWith(";base64")) {
      throw new InputError("invalid_request", "an image data URL must have the form data:image/...;base64,<data>", param);
    }
    mediaType = header.slice(0, -";base64".length).split(";")[0] ?? "";
    if (!IMAGE_MEDIA_TYPES.includes(mediaType)) {
      throw new InputError(
        "unsupported_media_type",
        `unsupported image type ${echo(mediaType)}; use one of ${IMAGE_MEDIA_TYPES.join(", ")}`,
        param,
      );
    }
    payload = value.slice(comma + 1);
  }
  const compact = payload.replace(/\s+/g, "");
  if (compact.length === 0 || compact.length % 4 === 1 || !BASE64.test(compact)) {
    throw new InputError("invalid_request", "the image is not valid base64", param);
  }
  if (Math.floor((compact.length * 3) / 4) > maxBytes + 2) {
    throw new InputError("payload_too_large", `the image is larger than ${maxBytes} bytes`, param);
  }
  const binary = atob(compact);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return { bytes, mediaType };
}

/** An image as a request gives it: bytes, or a remote URL still to fetch (shared/api/remote-image.ts). */
export type ImageSource = { readonly bytes: Uint8Array } | { readonly url: string; readonly param: string };

/**
 * Reads an `image_url` value: a URL with a scheme other than `data:` (base64 has no ":") is remote, to be fetched
 * (the fetch checks the scheme and origin); anything else is decoded as {@link decodeImageString} does.
 */
export function imageSource(value: string, param: string, maxBytes: number = MAX_IMAGE_BYTES): ImageSource {
  if (/^[a-z][a-z0-9+.-]*:/i.test(value) && !/^data:/i.test(value)) return { url: value, param };
  return { bytes: decodeImageString(value, param, maxBytes).bytes };
}
