/**
 * The public API (the decoder worker is the entry point):
 *
 *   POST   /v1/generate           native; SSE (`stream: true`, default) or JSON
 *   POST   /v1/chat/completions   OpenAI-compatible; SSE chunks ending with `data: [DONE]`, or JSON
 *   GET    /v1/models             the served model
 *   POST   /v1/images             upload an image (encoded by the vision worker) → image_id
 *   GET    /v1/sessions/:id       a session's state;  DELETE /v1/sessions/:id  forgets it
 *   GET    /healthz
 *   GET    /                      the playground page (functions/playground), same origin as the API
 *
 * Every `/v1/*` request passes the guard first (CORS, API keys, rate limit: guard.ts). Bodies are limited and
 * validated with zod at the edge; every refusal is `{"error": {"type", "message", "param"?}}` with its 4xx.
 */
import { zValidator } from "@hono/zod-validator";
import { Hono, type Context, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { z } from "zod";
import { chatPrompt, chatRequestSchema, chatSampling } from "../../shared/api/chat-schema.ts";
import { generateRequestSchema, nativeSampling } from "../../shared/api/generate-schema.ts";
import { decodeImageString } from "../../shared/api/image-input.ts";
import { MULTIPART_OVERHEAD_BYTES, readImageUpload } from "../../shared/api/image-upload.ts";
import { resolvePrefix } from "../../shared/tasks/request.ts";
import { nativeDoneFrame, nativeErrorFrame, nativeJson, nativeTokenFrame } from "../../shared/api/native-format.ts";
import { ChatChunkWriter, chatCompletion, modelList, openaiErrorFrame } from "../../shared/api/openai-format.ts";
import { sessionIdSchema } from "../../shared/api/params.ts";
import { SSE_DONE } from "../../shared/api/sse.ts";
import { zodToInputError } from "../../shared/api/validation.ts";
import { InputError } from "../../shared/errors.ts";
import { methodNotAllowed, notFound, onError } from "../../shared/worker/http-errors.ts";
import { registerPlayground } from "../playground/index.ts";
import type { DecoderDeps } from "./deps.ts";
import type { DecoderEnv } from "./env.ts";
import { guard, type DecoderAppEnv } from "./guard.ts";
import { collect, sseResponse } from "./render.ts";
import { encodeFor, scopedSessionName, SESSION_HEADER, sessionRef, startRun } from "./run.ts";

/** Validates a JSON body with zod, turning failures into InputError (400/422 with `param`). */
function json<S extends z.ZodType>(schema: S) {
  return zValidator("json", schema, (result) => {
    if (!result.success) throw zodToInputError(result.error);
  });
}

/** A body limit of `maxSize` bytes whose refusal is a 413 JSON error. */
function limitBody(maxSize: number, what: string, param?: string): MiddlewareHandler {
  return bodyLimit({
    maxSize,
    onError: () => {
      throw new InputError("payload_too_large", `${what} is larger than ${maxSize} bytes`, param);
    },
  });
}

/** The session a path names, scoped to the request's owner; 404 when it holds nothing. */
async function existingSession(c: Context<DecoderAppEnv>, d: DecoderDeps) {
  const id = sessionIdSchema.safeParse(c.req.param("id"));
  if (!id.success) throw zodToInputError(id.error);
  const session = d.session(scopedSessionName(c.get("owner"), id.data));
  const info = await session.describe();
  if (info.record === null && !info.busy && info.queued === 0) {
    throw new InputError("not_found", `session "${id.data}" is unknown or expired`, "id");
  }
  return { session, info };
}

/** Builds the decoder app; `deps` resolves sessions, keys and the vision worker for a request's env. */
export function createDecoderApp(deps: (env: DecoderEnv) => DecoderDeps): Hono<DecoderAppEnv> {
  const app = new Hono<DecoderAppEnv>();
  app.onError(onError);
  app.notFound(notFound);

  /** JSON-only routes: other content types are a 415, oversized bodies a 413. */
  const jsonBody: MiddlewareHandler<DecoderAppEnv> = async (c, next) => {
    if (!/^application\/json\s*(;|$)/i.test(c.req.header("content-type") ?? "")) {
      throw new InputError("unsupported_media_type", "send the request as application/json", "content-type");
    }
    return limitBody(deps(c.env).limits.maxBodyBytes, "the request body")(c, next);
  };

  app.get("/healthz", async (c) => {
    const d = deps(c.env);
    return c.json({ status: "ok", worker: "decoder", model: d.modelId, auth: (await d.apiKeys()) ? "api_key" : "open" });
  });

  registerPlayground(app);

  app.use("/v1/*", guard(deps));

  app.get("/v1/models", (c) => c.json(modelList([{ id: deps(c.env).modelId, created: 0 }])));

  app.post(
    "/v1/images",
    (c, next) => limitBody(deps(c.env).limits.maxImageBytes + MULTIPART_OVERHEAD_BYTES, "the image", "image")(c, next),
    async (c) => {
      const d = deps(c.env);
      const bytes = await readImageUpload(c.req.raw);
      if (bytes.length > d.limits.maxImageBytes) {
        throw new InputError("payload_too_large", `the image is larger than ${d.limits.maxImageBytes} bytes`, "image");
      }
      const record = await encodeFor(d, bytes, c.get("owner"));
      return c.json(record, record.cached ? 200 : 201);
    },
  );

  app.get("/v1/sessions/:id", async (c) => c.json((await existingSession(c, deps(c.env))).info));

  app.delete("/v1/sessions/:id", async (c) => {
    await (await existingSession(c, deps(c.env))).session.reset();
    return c.body(null, 204);
  });

  app.post("/v1/generate", jsonBody, json(generateRequestSchema), async (c) => {
    const body = c.req.valid("json");
    const d = deps(c.env);
    const session = sessionRef(c, body.session);
    const prompt = resolvePrefix(body); // the free prompt, or the task's PaliGemma prefix
    const image = body.image === undefined ? undefined : decodeImageString(body.image, "image", d.limits.maxImageBytes).bytes;
    const { info, reader } = await startRun(d, c.get("owner"), session, {
      model: body.model,
      prompt,
      image,
      imageId: body.image_id,
      sampling: nativeSampling(body),
      masks: true,
    });
    const headers = { [SESSION_HEADER]: info.session };
    if (!body.stream) {
      const { tokens, done } = await collect(reader);
      return c.json(nativeJson(info, done, tokens, prompt), 200, headers);
    }
    return sseResponse(
      reader,
      { token: nativeTokenFrame, done: (done) => nativeDoneFrame(info, done, prompt), error: nativeErrorFrame },
      headers,
    );
  });

  app.post("/v1/chat/completions", jsonBody, json(chatRequestSchema), async (c) => {
    const body = c.req.valid("json");
    const d = deps(c.env);
    const session = sessionRef(c, body.session);
    const { prompt, image } = chatPrompt(body, d.limits.maxImageBytes);
    const sampling = chatSampling(body);
    const { info, reader } = await startRun(d, c.get("owner"), session, { model: body.model, prompt, image, sampling });
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

  // Known paths asked with another method: 405 with `allow` (after the routes above, which answer first).
  app.all("/healthz", methodNotAllowed(["GET"]));
  app.all("/v1/models", methodNotAllowed(["GET"]));
  app.all("/v1/images", methodNotAllowed(["POST"]));
  app.all("/v1/sessions/:id", methodNotAllowed(["GET", "DELETE"]));
  app.all("/v1/generate", methodNotAllowed(["POST"]));
  app.all("/v1/chat/completions", methodNotAllowed(["POST"]));
  return app;
}
