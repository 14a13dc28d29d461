/**
 * The public API (the decoder worker is the entry point):
 *
 *   POST   /v1/generate           native; SSE (`stream: true`, default) or JSON
 *   POST   /v1/chat/completions   OpenAI-compatible; SSE chunks ending with `data: [DONE]`, or JSON
 *   GET    /v1/models             the served model
 *   POST   /v1/images             upload an image (passed through to the vision worker) → image_id
 *   GET    /v1/sessions/:id       a session's state;  DELETE /v1/sessions/:id  forgets it
 *   GET    /healthz
 */
import { zValidator } from "@hono/zod-validator";
import { Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { z } from "zod";
import { chatPrompt, chatRequestSchema, chatSampling } from "../../shared/api/chat-schema.ts";
import { generateRequestSchema, nativeSampling } from "../../shared/api/generate-schema.ts";
import { decodeImageString, MAX_IMAGE_BYTES } from "../../shared/api/image-input.ts";
import { nativeDoneFrame, nativeErrorFrame, nativeJson, nativeTokenFrame } from "../../shared/api/native-format.ts";
import { ChatChunkWriter, chatCompletion, modelList, openaiErrorFrame } from "../../shared/api/openai-format.ts";
import { sessionIdSchema } from "../../shared/api/params.ts";
import { SSE_DONE } from "../../shared/api/sse.ts";
import { zodToInputError } from "../../shared/api/validation.ts";
import { InputError } from "../../shared/errors.ts";
import { notFound, onError } from "../../shared/worker/http-errors.ts";
import type { DecoderDeps } from "./deps.ts";
import type { DecoderEnv } from "./env.ts";
import { collect, sseResponse } from "./render.ts";
import { SESSION_HEADER, sessionName, startRun } from "./run.ts";

/** JSON bodies may carry one base64 image (4/3 of its size) plus the prompt. */
const JSON_BODY_LIMIT = Math.ceil((MAX_IMAGE_BYTES * 4) / 3) + 1024 * 1024;

/** Validates a JSON body with zod, turning failures into InputError (400/422 with `param`). */
function json<S extends z.ZodType>(schema: S) {
  return zValidator("json", schema, (result) => {
    if (!result.success) throw zodToInputError(result.error);
  });
}

const limitBody = bodyLimit({
  maxSize: JSON_BODY_LIMIT,
  onError: () => {
    throw new InputError("payload_too_large", `the request body is larger than ${JSON_BODY_LIMIT} bytes`);
  },
});

/** JSON-only routes: other content types are a 415, oversized bodies a 413. */
const jsonBody: MiddlewareHandler = async (c, next) => {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/json\b/i.test(type)) {
    throw new InputError("unsupported_media_type", "send the request as application/json", "content-type");
  }
  return limitBody(c, next);
};

/** Builds the decoder app; `deps` resolves sessions and the vision worker for a request's env. */
export function createDecoderApp(deps: (env: DecoderEnv) => DecoderDeps): Hono<{ Bindings: DecoderEnv }> {
  const app = new Hono<{ Bindings: DecoderEnv }>();
  app.onError(onError);
  app.notFound(notFound);

  app.get("/healthz", (c) => c.json({ status: "ok", worker: "decoder", model: deps(c.env).modelId }));

  app.get("/v1/models", (c) => c.json(modelList([{ id: deps(c.env).modelId, created: 0 }])));

  app.post("/v1/images", (c) => deps(c.env).forwardImage(c.req.raw));

  app.get("/v1/sessions/:id", async (c) => {
    const id = sessionIdSchema.safeParse(c.req.param("id"));
    if (!id.success) throw zodToInputError(id.error);
    return c.json(await deps(c.env).session(id.data).describe());
  });

  app.delete("/v1/sessions/:id", async (c) => {
    const id = sessionIdSchema.safeParse(c.req.param("id"));
    if (!id.success) throw zodToInputError(id.error);
    await deps(c.env).session(id.data).reset();
    return c.body(null, 204);
  });

  app.post("/v1/generate", jsonBody, json(generateRequestSchema), async (c) => {
    const body = c.req.valid("json");
    const d = deps(c.env);
    const name = sessionName(c, body.session);
    const image = body.image === undefined ? undefined : decodeImageString(body.image, "image").bytes;
    const { info, reader } = await startRun(d, name, {
      model: body.model,
      prompt: body.prompt,
      image,
      imageId: body.image_id,
      sampling: nativeSampling(body),
    });
    const headers = { [SESSION_HEADER]: info.session };
    if (!body.stream) {
      const { tokens, done } = await collect(reader);
      return c.json(nativeJson(info, done, tokens), 200, headers);
    }
    return sseResponse(
      reader,
      { token: nativeTokenFrame, done: (done) => nativeDoneFrame(info, done), error: nativeErrorFrame },
      headers,
    );
  });

  app.post("/v1/chat/completions", jsonBody, json(chatRequestSchema), async (c) => {
    const body = c.req.valid("json");
    const d = deps(c.env);
    const name = sessionName(c, body.session);
    const { prompt, image } = chatPrompt(body);
    const sampling = chatSampling(body);
    const { info, reader } = await startRun(d, name, { model: body.model, prompt, image, sampling });
    const ctx = {
      id: `chatcmpl-${crypto.randomUUID().replaceAll("-", "")}`,
      created: Math.floor(Date.now() / 1000),
      model: info.model,
      includeUsage: body.stream_options?.include_usage === true,
      logprobs: sampling.logprobs,
    };
    const headers = { [SESSION_HEADER]: info.session };
    if (!body.stream) {
      const { tokens, done } = await collect(reader);
      return c.json(chatCompletion(ctx, done, tokens), 200, headers);
    }
    const writer = new ChatChunkWriter(ctx);
    return sseResponse(
      reader,
      {
        start: () => writer.start(),
        token: (t) => writer.token(t),
        done: (done) => writer.finish(done) + SSE_DONE,
        error: openaiErrorFrame,
      },
      headers,
    );
  });

  return app;
}
