/**
 * The public API (the decoder worker is the entry point):
 *
 *   POST   /v1/generate           native; SSE (`stream: true`, default) or JSON
 *   POST   /v1/chat/completions   OpenAI-compatible; SSE chunks ending with `data: [DONE]`, or JSON
 *   GET    /v1/models             the served model
 *   GET    /v1/info               the served model and the engine that encodes its images (backends, memory)
 *   POST   /v1/images             upload an image (encoded by the vision worker) → image_id
 *   GET    /v1/sessions/:id       a session's state;  DELETE /v1/sessions/:id  forgets it
 *   GET    /healthz, /health
 *   GET    /                      the playground page (functions/playground), same origin as the API
 *
 * Every response carries `x-request-id` and every request is logged (request-log.ts); its dependencies are built
 * once, when first used (context.ts). Every `/v1/*` request passes the guard first (CORS, API keys, rate limit:
 * guard.ts). Bodies are limited, strict UTF-8 and validated with zod
 * at the edge; every refusal is `{"error": {"type", "message", "param"?}}` with its 4xx, in OpenAI's shape on the
 * OpenAI routes (errors.ts).
 */
import { Hono, type Context, type MiddlewareHandler } from "hono";
import { generateRequestSchema, nativeSampling, type GenerateRequestBody } from "../../shared/api/generate-schema.ts";
import { decodeImageString, imageSource } from "../../shared/api/image-input.ts";
import { MULTIPART_OVERHEAD_BYTES, readImageUpload } from "../../shared/api/image-upload.ts";
import { resolvePrefix } from "../../shared/tasks/request.ts";
import { nativeDoneFrame, nativeErrorFrame, nativeJson, nativeTokenFrame } from "../../shared/api/native-format.ts";
import { modelList } from "../../shared/api/openai-format.ts";
import { chooseModel, modelEntries } from "../../shared/api/model-choice.ts";
import { sessionIdSchema } from "../../shared/api/params.ts";
import { zodToInputError } from "../../shared/api/validation.ts";
import { InputError } from "../../shared/errors.ts";
import type { PromptSpan } from "../../shared/text/prompt.ts";
import { methodNotAllowed } from "../../shared/worker/http-errors.ts";
import { registerPlayground } from "../playground/index.ts";
import { json, jsonBody as jsonBodyOf, limitBody } from "./body.ts";
import { registerChat } from "./chat-route.ts";
import { requestContext, type DecoderAppEnv } from "./context.ts";
import type { DecoderDeps } from "./deps.ts";
import type { DecoderEnv } from "./env.ts";
import { errorResponse, routeMissing } from "./errors.ts";
import { guard } from "./guard.ts";
import { collect, sseResponse } from "./render.ts";
import { requestLog } from "./request-log.ts";
import { encodeFor, scopedSessionName, SESSION_HEADER, sessionRef, startRun, visionInfoFor } from "./run.ts";

/** Where the free text of a native request lies in its prefix: the prompt, or a task's question. */
function nativeSpans(body: GenerateRequestBody, prefix: string): PromptSpan[] {
  if (body.task === undefined) return [{ param: "prompt", start: 0, end: prefix.length }];
  const question = body.question?.trim();
  if (body.task === "answer" && question && prefix.endsWith(question)) {
    return [{ param: "question", start: prefix.length - question.length, end: prefix.length }];
  }
  return [{ param: "task", start: 0, end: prefix.length }];
}

/** Options of the app itself (not of a deployment). */
export interface DecoderAppOptions {
  /** Receives the one log line of each request (default console.log). */
  readonly log?: (line: string) => void;
}

/** The session a path names, scoped to the request's owner; 404 when it holds nothing. */
async function existingSession(c: Context<DecoderAppEnv>) {
  const id = sessionIdSchema.safeParse(c.req.param("id"));
  if (!id.success) throw zodToInputError(id.error);
  const session = c.var.deps().session(scopedSessionName(c.get("owner"), id.data));
  const info = await session.describe();
  if (info.record === null && !info.busy && info.queued === 0) {
    throw new InputError("not_found", `session "${id.data}" is unknown or expired`, "id");
  }
  return { session, info };
}

/**
 * Builds the decoder app; `deps` resolves sessions, keys and the vision worker for a request's env (called at
 * most once per request: context.ts).
 */
export function createDecoderApp(deps: (env: DecoderEnv) => DecoderDeps, options: DecoderAppOptions = {}): Hono<DecoderAppEnv> {
  const app = new Hono<DecoderAppEnv>();
  app.onError(errorResponse);
  app.notFound(routeMissing);
  app.use("*", requestLog(options.log));
  app.use("*", requestContext(deps));

  /** JSON-only routes: other content types are a 415, oversized bodies a 413, invalid UTF-8 a 400. */
  const jsonBody: MiddlewareHandler<DecoderAppEnv> = jsonBodyOf((c) => (c as Context<DecoderAppEnv>).var.deps().limits.maxBodyBytes);

  const health = async (c: Context<DecoderAppEnv>) => {
    const d = c.var.deps();
    return c.json({ status: "ok", worker: "decoder", model: d.modelId, auth: (await d.apiKeys()) ? "api_key" : "open" });
  };
  app.get("/healthz", health);
  app.get("/health", health);

  registerPlayground(app);

  app.use("/v1/*", guard());

  app.get("/v1/models", async (c) => {
    const d = c.var.deps();
    // Each stage (name, kind, from, to) and whether its stage worker has it loaded (null: loaded in a session).
    const stages = d.stages ? await d.stages().catch((err: unknown) => (console.error("listing stages:", err), undefined)) : undefined;
    const [base, ...adapters] = modelEntries(d.modelId, await d.adapters());
    return c.json(modelList([{ ...base!, ...(stages ? { stages } : {}) }, ...adapters]));
  });

  app.get("/v1/info", async (c) => {
    const d = c.var.deps();
    // The decoder side's engine lives in each session (GET /v1/sessions/:id reports it); the vision side's here.
    return c.json({ model: d.modelId, vision: await visionInfoFor(d, c.get("requestId")) });
  });

  app.post(
    "/v1/images",
    (c, next) => limitBody(c.var.deps().limits.maxImageBytes + MULTIPART_OVERHEAD_BYTES, "the image", "image")(c, next),
    async (c) => {
      const d = c.var.deps();
      const bytes = await readImageUpload(c.req.raw);
      if (bytes.length > d.limits.maxImageBytes) {
        throw new InputError("payload_too_large", `the image is larger than ${d.limits.maxImageBytes} bytes`, "image");
      }
      const choice = chooseModel(d.modelId, await d.adapters(), c.req.query("model"));
      const { image: record } = await encodeFor(d, bytes, c.get("owner"), { requestId: c.get("requestId"), adapter: choice.vision ? choice.adapter! : undefined });
      return c.json(record, record.cached ? 200 : 201);
    },
  );

  app.get("/v1/sessions/:id", async (c) => c.json((await existingSession(c)).info));

  app.delete("/v1/sessions/:id", async (c) => {
    await (await existingSession(c)).session.reset();
    return c.body(null, 204);
  });

  app.post("/v1/generate", jsonBody, json(generateRequestSchema), async (c) => {
    const body = c.req.valid("json");
    const d = c.var.deps();
    const session = sessionRef(c, body.session);
    const prompt = resolvePrefix(body); // the free prompt, or the task's PaliGemma prefix
    const max = d.limits.maxImageBytes;
    const image =
      body.image !== undefined ? { bytes: decodeImageString(body.image, "image", max).bytes }
      : body.image_url !== undefined ? imageSource(body.image_url, "image_url", max)
      : undefined;
    const requestId = c.get("requestId");
    const { info, reader } = await startRun(d, c.get("owner"), session, {
      model: body.model,
      adapter: body.adapter,
      prompt,
      promptSpans: nativeSpans(body, prompt),
      image,
      imageId: body.image_id,
      sampling: nativeSampling(body),
      signal: c.get("disconnect"),
      requestId,
      masks: true,
    });
    const headers: Record<string, string> = info.session === null ? {} : { [SESSION_HEADER]: info.session };
    if (!body.stream) {
      const { tokens, done } = await collect(reader);
      return c.json(nativeJson(info, done, tokens, prompt), 200, headers);
    }
    return sseResponse(
      reader,
      { token: nativeTokenFrame, done: (done) => nativeDoneFrame(info, done, prompt), error: nativeErrorFrame },
      headers,
      requestId,
    );
  });

  registerChat(app, jsonBody);

  // Known paths asked with another method: 405 with `allow` (after the routes above, which answer first).
  app.all("/v1/info", methodNotAllowed(["GET"]));
  app.all("/healthz", methodNotAllowed(["GET"]));
  app.all("/health", methodNotAllowed(["GET"]));
  app.all("/v1/models", methodNotAllowed(["GET"]));
  app.all("/v1/images", methodNotAllowed(["POST"]));
  app.all("/v1/sessions/:id", methodNotAllowed(["GET", "DELETE"]));
  app.all("/v1/generate", methodNotAllowed(["POST"]));
  app.all("/v1/chat/completions", methodNotAllowed(["POST"]));
  return app;
}
