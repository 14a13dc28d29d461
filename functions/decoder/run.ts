/**
 * The part of a generate request both APIs share: resolve the session, send an inline image to the vision
 * worker, and hand the request to the session, turning its errors back into InputErrors.
 *
 * Scoping: with API keys, a session's Durable Object is named `<owner>/<session id>`, so a key reaches only the
 * sessions it created: another key naming the same id gets an empty session (a 404 for anything that needs
 * the old one), and learns nothing about the first. A request that names no session runs in a transient one
 * (a fresh object id: nobody can reach it again) that stores nothing.
 *
 * Faults: the vision worker failing is a 503 (`unavailable`); a session whose image is gone from KV while the
 * request carries the image itself gets it encoded again and is asked once more. What failed inside is logged
 * with the request id, never put in the response (only a deployment error keeps its message, which names a var).
 */
import type { Context } from "hono";
import { EventReader, type RunInfo } from "../../shared/api/events.ts";
import { SESSION_ID_PATTERN, SESSION_ID_RULE, type GenerationParams } from "../../shared/api/params.ts";
import type { ImageRecord, VisionInfo } from "../../shared/api/vision-rpc.ts";
import { CONFIG_ERROR_PREFIX, ConfigError, errorFromData, InputError, ServiceError } from "../../shared/errors.ts";
import type { ImageSource } from "../../shared/api/image-input.ts";
import { fetchRemoteImage } from "../../shared/api/remote-image.ts";
import type { PromptSpan } from "../../shared/text/prompt.ts";
import type { EncodedSoftTokens } from "../../shared/worker/soft-token-store.ts";
import { randomId } from "../../shared/worker/auth.ts";
import type { DecoderDeps, SessionApi } from "./deps.ts";
import { chooseModel } from "../../shared/api/model-choice.ts";
import type { SessionReply, SessionRequest } from "./session-types.ts";

/** Header that names a session (the body field `session` does too). */
export const SESSION_HEADER = "x-session-id";

/** A session as a request names it. */
export interface SessionRef {
  /** The client's id for it; null when the request names none (a transient session: nothing persists). */
  readonly name: string | null;
  /** Whether the client named the session. */
  readonly named: boolean;
}

/** A generate request after API-specific parsing. */
export interface RunInput {
  readonly model?: string;
  /** The native API's adapter field (model "<base>:<name>" says the same). */
  readonly adapter?: string;
  readonly prompt: string;
  /** Which request field each part of `prompt` came from. */
  readonly promptSpans?: readonly PromptSpan[];
  /** An inline image: its bytes, or a remote URL fetched here first (IMAGE_URL_ORIGINS, remote-image.ts). */
  readonly image?: ImageSource;
  readonly imageId?: string;
  readonly sampling: GenerationParams;
  /** Aborted when the client disconnects (the incoming request's signal). */
  readonly signal?: AbortSignal;
  /** The request's id, for log lines. */
  readonly requestId?: string;
  /** Ask the session for segmentation masks (native API). */
  readonly masks?: boolean;
}

/** The session of a request: the header or the body field (which must agree), else none (transient). */
export function sessionRef(c: Context, bodySession: string | undefined): SessionRef {
  const header = c.req.header(SESSION_HEADER);
  if (header !== undefined && !SESSION_ID_PATTERN.test(header)) {
    throw new InputError("invalid_request", `${SESSION_HEADER}: ${SESSION_ID_RULE}`, SESSION_HEADER);
  }
  if (header !== undefined && bodySession !== undefined && header !== bodySession) {
    throw new InputError("invalid_request", `the ${SESSION_HEADER} header and the session field name different sessions`, "session");
  }
  const name = bodySession ?? header;
  return name === undefined ? { name: null, named: false } : { name, named: true };
}

/** The Durable Object name of session `name` for `owner` ("/" never occurs in a session id). */
export function scopedSessionName(owner: string, name: string): string {
  return owner ? `${owner}/${name}` : name;
}

/** A failed RPC as the client sees it: a deployment error as such, anything else a 503 that says only `what`. */
function rpcFailure(err: unknown, what: string, requestId: string | undefined): Error {
  const message = err instanceof Error ? err.message : String(err);
  console.error(`${what} (request ${requestId ?? "?"}):`, err);
  if (message.startsWith(CONFIG_ERROR_PREFIX)) return new ConfigError(message);
  return new ServiceError("unavailable", `${what}; retry later`, 1);
}

/**
 * Encodes `bytes` in the vision worker for `owner`; its failures are 503s, bad images their own 4xx. With
 * `inline`, the soft tokens it computed come back too (absent when the image was already stored).
 */
export async function encodeFor(
  deps: DecoderDeps,
  bytes: Uint8Array,
  owner: string,
  opts: { readonly force?: boolean; readonly requestId?: string; readonly inline?: boolean; readonly adapter?: string } = {},
): Promise<{ image: ImageRecord; soft?: EncodedSoftTokens }> {
  let reply;
  try {
    const extra = { ...(opts.inline ? { inline: true } : {}), ...(opts.adapter ? { adapter: opts.adapter } : {}) };
    reply = await deps.encodeImage(bytes, { owner, force: opts.force ?? false, ...extra });
  } catch (err) {
    throw rpcFailure(err, "the vision service failed", opts.requestId);
  }
  if (reply.ok) return reply.soft ? { image: reply.image, soft: reply.soft } : { image: reply.image };
  if (reply.error.status >= 500) throw rpcFailure(new Error(reply.error.message), "the vision service could not encode the image", opts.requestId);
  throw errorFromData(reply.error);
}

/** The vision worker's model and engine (`GET /v1/info`); its failure is a 503, as an encode's is. */
export async function visionInfoFor(deps: DecoderDeps, requestId?: string): Promise<VisionInfo> {
  try {
    return await deps.describeVision();
  } catch (err) {
    throw rpcFailure(err, "the vision service failed", requestId);
  }
}

async function ask(session: SessionApi, req: SessionRequest): Promise<SessionReply> {
  try {
    return await session.generate(req);
  } catch (err) {
    throw rpcFailure(err, "the session failed", req.requestId);
  }
}

/** Whether a session refused a request because the image's soft tokens are not in KV. */
function missingSoftTokens(reply: SessionReply): boolean {
  return !reply.ok && reply.error.type === "not_found" && reply.error.param === "image_id";
}

/** A remote image's bytes, fetched under the deployment's URL policy, byte limit and time limit. */
function fetchImage(deps: DecoderDeps, source: { readonly url: string; readonly param: string }, signal: AbortSignal | undefined): Promise<Uint8Array> {
  const { imageUrls, imageUrlTimeoutMs, maxImageBytes } = deps.limits;
  return fetchRemoteImage(source.url, source.param, { policy: imageUrls, maxBytes: maxImageBytes, timeoutMs: imageUrlTimeoutMs, fetch: deps.fetch, signal });
}

/** Checks the request against the deployment, fetches and encodes an inline image, and starts the session's stream. */
export async function startRun(
  deps: DecoderDeps,
  owner: string,
  session: SessionRef,
  input: RunInput,
): Promise<{ info: RunInfo; reader: EventReader }> {
  const choice = chooseModel(deps.modelId, await deps.adapters(), input.model, input.adapter);
  const visionAdapter = choice.vision ? choice.adapter! : undefined;
  const { maxNewTokens } = deps.limits;
  if (input.sampling.maxTokens > maxNewTokens) {
    throw new InputError("invalid_request", `max_tokens must be at most ${maxNewTokens}`, "max_tokens");
  }
  let imageId = input.imageId;
  const { requestId } = input;
  const image = input.image && ("bytes" in input.image ? input.image.bytes : await fetchImage(deps, input.image, input.signal));
  // An inline image's soft tokens, when the vision worker computed them now, go to the session with the request.
  let soft: EncodedSoftTokens | undefined;
  if (image) ({ image: { image_id: imageId }, soft } = await encodeFor(deps, image, owner, { requestId, inline: true, adapter: visionAdapter }));
  // Only named sessions persist: an unnamed request gets a fresh object that stores nothing (no record, no alarm).
  const api = session.name === null ? deps.transientSession() : deps.session(scopedSessionName(owner, session.name));
  const runId = randomId("run_");
  const req: SessionRequest = {
    session: session.name,
    named: session.named,
    owner,
    prompt: input.prompt,
    ...(choice.adapter ? { adapter: choice.adapter, visionAdapter: choice.vision } : {}),
    ...(input.promptSpans ? { promptSpans: input.promptSpans } : {}),
    imageId,
    ...(soft ? { softTokens: soft } : {}),
    sampling: input.sampling,
    runId,
    ...(input.masks ? { masks: true } : {}),
    ...(requestId ? { requestId } : {}),
  };
  let reply = await ask(api, req);
  if (image && missingSoftTokens(reply)) {
    // The header said "stored" but the tensor is gone (expired or evicted from KV): the image is at hand.
    ({ image: { image_id: imageId }, soft } = await encodeFor(deps, image, owner, { force: true, requestId, inline: true, adapter: visionAdapter }));
    reply = await ask(api, { ...req, imageId, ...(soft ? { softTokens: soft } : {}) });
  }
  if (!reply.ok) throw errorFromData(reply.error);
  // A client that goes away cancels the reader (the response body's cancel, or the request's abort signal);
  // the session is then told by RPC too, because cancelling a stream received over RPC does not always reach
  // the Durable Object that is writing it (seen under wrangler dev: the lock stayed held until the idle timeout).
  const reader = new EventReader(reply.stream, () => void api.cancel(runId).catch((err) => console.error("session cancel RPC:", err)));
  if (input.signal?.aborted) await reader.cancel();
  else input.signal?.addEventListener("abort", () => void reader.cancel(), { once: true });
  return { info: reply.info, reader };
}
