/**
 * `POST /v1/images` bodies: the raw image (content-type image/png, image/jpeg, image/webp or image/gif) or multipart/form-data with
 * exactly one file part named `image` (or `file`). Both workers read uploads with this, after a body limit.
 */
import { InputError } from "../errors.ts";
import { IMAGE_MEDIA_TYPES } from "./image-input.ts";

/** Room for multipart framing around the largest image. */
export const MULTIPART_OVERHEAD_BYTES = 64 * 1024;

/**
 * The image bytes of an upload. Throws InputError: 415 for another content type, 400 for an unparsable
 * multipart body or one without a file part, 422 for more than one image, 400 for an empty image.
 */
export async function readImageUpload(req: Request): Promise<Uint8Array> {
  const type = (req.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  let bytes: Uint8Array;
  if (IMAGE_MEDIA_TYPES.includes(type)) bytes = new Uint8Array(await req.arrayBuffer());
  else if (type === "multipart/form-data") bytes = await multipartImage(req);
  else {
    throw new InputError(
      "unsupported_media_type",
      `send the image as the raw body with content-type ${IMAGE_MEDIA_TYPES.join(" or ")}, or as multipart/form-data`,
      "content-type",
    );
  }
  if (bytes.length === 0) throw new InputError("invalid_request", "the request has no image (empty body)", "image");
  return bytes;
}

async function multipartImage(req: Request): Promise<Uint8Array> {
  let form: FormData;
  try {
    form = await req.formData();
  } catch {
    throw new InputError("invalid_request", "the multipart body could not be parsed", "image");
  }
  const files = [...form.getAll("image"), ...form.getAll("file")].filter((p): p is File => typeof p !== "string");
  if (files.length === 0) throw new InputError("invalid_request", 'the multipart body needs a file part named "image"', "image");
  if (files.length > 1) throw new InputError("unprocessable", "send one image per upload", "image");
  return new Uint8Array(await files[0].arrayBuffer());
}
