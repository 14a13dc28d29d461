/**
 * The vision worker's HTTP API (reached only through the decoder's service binding once deployed:
 * `workers_dev = false` in its wrangler.toml; the decoder calls the `encode` RPC method, not this route).
 *
 *   POST /v1/images   raw body (content-type image/png | image/jpeg | image/webp | image/gif) or multipart/form-data with one `image`
 *                     (or `file`) part → 201 {"image_id", "cached": false, "model", "tokens"}
 *                     (200 with "cached": true when the image is already stored)
 *   GET  /healthz
 *
 * Images stored through this route have no owner: they are the open deployment's, refused to API keys.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { MULTIPART_OVERHEAD_BYTES, readImageUpload } from "../../shared/api/image-upload.ts";
import { InputError } from "../../shared/errors.ts";
import { methodNotAllowed, notFound, onError } from "../../shared/worker/http-errors.ts";
import { encodeImage, type EncodeDeps } from "./encode.ts";
import type { VisionEnv } from "./env.ts";

/** Builds the app; `deps` resolves the model, store and limits for a request's env (fakes in tests). */
export function createVisionApp(deps: (env: VisionEnv) => EncodeDeps): Hono<{ Bindings: VisionEnv }> {
  const app = new Hono<{ Bindings: VisionEnv }>();
  app.onError(onError);
  app.notFound(notFound);

  app.get("/healthz", (c) => c.json({ status: "ok", worker: "vision", model: c.env.MODEL_ID }));

  app.post("/v1/images", async (c, next) => {
    const { maxBytes } = deps(c.env);
    const limit = bodyLimit({
      maxSize: maxBytes + MULTIPART_OVERHEAD_BYTES,
      onError: () => {
        throw new InputError("payload_too_large", `the image is larger than ${maxBytes} bytes`, "image");
      },
    });
    return limit(c, next);
  }, async (c) => {
    const d = deps(c.env);
    const record = await encodeImage(d, await readImageUpload(c.req.raw));
    return c.json(record, record.cached ? 200 : 201);
  });
  app.all("/v1/images", methodNotAllowed(["POST"]));
  return app;
}
