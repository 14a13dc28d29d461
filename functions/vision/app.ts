/**
 * The vision worker's HTTP API.
 *
 *   POST /v1/images   raw body (content-type image/png | image/jpeg | image/webp) or multipart/form-data with an
 *                     `image` (or `file`) part → 201 {"image_id", "cached": false, "model", "tokens"}
 *                     (200 with "cached": true when the image is already stored)
 *   GET  /healthz
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { InputError } from "../../shared/errors.ts";
import { IMAGE_MEDIA_TYPES, MAX_IMAGE_BYTES } from "../../shared/api/image-input.ts";
import { notFound, onError } from "../../shared/worker/http-errors.ts";
import { encodeImage, type EncodeDeps } from "./encode.ts";
import type { VisionEnv } from "./env.ts";

/** Room for multipart framing around the largest image. */
const MULTIPART_OVERHEAD = 64 * 1024;

/** Builds the app; `deps` resolves the model and store for a request's env (fakes in tests). */
export function createVisionApp(deps: (env: VisionEnv) => EncodeDeps): Hono<{ Bindings: VisionEnv }> {
  const app = new Hono<{ Bindings: VisionEnv }>();
  app.onError(onError);
  app.notFound(notFound);

  app.get("/healthz", (c) => c.json({ status: "ok", worker: "vision", model: c.env.MODEL_ID }));

  app.post(
    "/v1/images",
    bodyLimit({
      maxSize: MAX_IMAGE_BYTES + MULTIPART_OVERHEAD,
      onError: () => {
        throw new InputError("payload_too_large", `the image is larger than ${MAX_IMAGE_BYTES} bytes`, "image");
      },
    }),
    async (c) => {
      const bytes = await readImageBody(c.req.raw);
      const record = await encodeImage(deps(c.env), bytes);
      return c.json(record, record.cached ? 200 : 201);
    },
  );
  return app;
}

/** The image bytes of a raw or multipart upload; 415 for any other content type. */
async function readImageBody(req: Request): Promise<Uint8Array> {
  const type = (req.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (IMAGE_MEDIA_TYPES.includes(type)) return new Uint8Array(await req.arrayBuffer());
  if (type === "multipart/form-data") {
    let form: FormData;
    try {
      form = await req.formData();
    } catch {
      throw new InputError("invalid_request", "the multipart body could not be parsed", "image");
    }
    const part = form.get("image") ?? form.get("file");
    if (part === null || typeof part === "string") {
      throw new InputError("invalid_request", 'the multipart body needs a file part named "image"', "image");
    }
    return new Uint8Array(await part.arrayBuffer());
  }
  throw new InputError(
    "unsupported_media_type",
    `send the image as the raw body with content-type ${IMAGE_MEDIA_TYPES.join(", ")}, or as multipart/form-data`,
    "content-type",
  );
}
