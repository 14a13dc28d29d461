/**
 * The part of a generate request both APIs share: resolve the session, send an inline image to the vision
 * worker, and hand the request to the session, turning its errors back into InputErrors.
 *
 * Scoping: with API keys, a session's Durable Object is named `<owner>/<session id>`, so a key reaches only the
 * sessions it created: another key naming the same id gets an empty session (a 404 for anything that needs
 * the old one), and learns nothing about the first. Ids the worker makes up are 128 random bits.
 *
 * Faults: the vision worker failing is a 503 (`unavailable`); a session whose image is gone from KV while the
 * request carries the image itself gets it encoded again and is asked once more.
 */
import type { Context } from "hono";
import { EventReader, type RunInfo } from "../../shared/api/events.ts";
import type { SamplingParams } from "../../shared/api/params.ts";
import { InputError } from "../../shared/errors.ts";
import { randomId } from "../../shared/worker/auth.ts";
import { ServiceError } from "../../shared/worker/http-errors.ts";
import type { ImageRecord } from "../vision/encode.ts";
import type { DecoderDeps, SessionApi } from "./deps.ts";
import { errorFrom } from "./render.ts";
import type { SessionReply, SessionRequest } from "./session-types.ts";

/** Header that names a session (the body field `session` does too). */
export const SESSION_HEADER = "x-session-id";

/** A session as a request names it. */
export interface SessionRef {
  /** The client's id for it. */
  readonly name: string;
  /** Whether the client chose the id (false: the worker made one up for this request). */
  readonly named: boolean;
}

/** A generate request after API-specific parsing. */
export interface RunInput {
  readonly model?: string;
  readonly prompt: string;
  readonly image?: Uint8Array;
  readonly imageId?: string;
  readonly sampling: SamplingParams;
  /** Ask the session for segmentation masks (native API). */
  readonly masks?: boolean;
}

/** The session of a request: the header or the body field (which must agree), else a new random id. */
export function sessionRef(c: Context, bodySession: string | undefined): SessionRef {
  const header = c.req.header(SESSION_HEADER);
  if (header !== undefined && !/^[A-Za-z0-9_.:-]{1,128}$/.test(header)) {
    throw new InputError("invalid_request", `${SESSION_HEADER}: a session id is 1-128 characters of A-Z a-z 0-9 _ . : -`, SESSION_HEADER);
  }
  if (header !== undefined && bodySession !== undefined && header !== bodySession) {
    throw new InputError("invalid_request", `the ${SESSION_HEADER} header and the session field name different sessions`, "session");
  }
  const name = bodySession ?? header;
  return name === undefined ? { name: randomId("sess_"), named: false } : { name, named: true };
}

/** The Durable Object name of session `name` for `owner` ("/" never occurs in a session id). */
export function scopedSessionName(owner: string, name: string): string {
  return owner ? `${owner}/${name}` : name;
}

/** Encodes `bytes` in the vision worker for `owner`; its failures are 503s, bad images their own 4xx. */
export async function encodeFor(deps: DecoderDeps, bytes: Uint8Array, owner: string, force = false): Promise<ImageRecord> {
  let reply;
  try {
    reply = await deps.encodeImage(bytes, { owner, force });
  } catch (err) {
    console.error("vision encode RPC:", err);
    throw new ServiceError("unavailable", `the vision service failed (${err instanceof Error ? err.message : String(err)}); retry later`, 1);
  }
  if (reply.ok) return reply.image;
  if (reply.error.status >= 500) {
    throw new ServiceError("unavailable", `the vision service could not encode the image (${reply.error.message}); retry later`, 1);
  }
  throw errorFrom(reply.error);
}

async function ask(session: SessionApi, req: SessionRequest): Promise<SessionReply> {
  try {
    return await session.generate(req);
  } catch (err) {
    console.error("session RPC:", err);
    throw new ServiceError("unavailable", `the session failed (${err instanceof Error ? err.message : String(err)}); retry`, 1);
  }
}

/** Whether a session refused a request because the image's soft tokens are not in KV. */
function missingSoftTokens(reply: SessionReply): boolean {
  return !reply.ok && reply.error.type === "not_found" && reply.error.param === "image_id";
}

/** Checks the request against the deployment, encodes an inline image, and starts the session's stream. */
export async function startRun(
  deps: DecoderDeps,
  owner: string,
  session: SessionRef,
  input: RunInput,
): Promise<{ info: RunInfo; reader: EventReader }> {
  if (input.model !== undefined && input.model !== deps.modelId) {
    throw new InputError("not_found", `model "${input.model}" is not served here; GET /v1/models lists "${deps.modelId}"`, "model");
  }
  const { maxNewTokens } = deps.limits;
  if (input.sampling.maxTokens > maxNewTokens) {
    throw new InputError("invalid_request", `max_tokens must be at most ${maxNewTokens}`, "max_tokens");
  }
  let imageId = input.imageId;
  if (input.image) imageId = (await encodeFor(deps, input.image, owner)).image_id;
  const api = deps.session(scopedSessionName(owner, session.name));
  const req: SessionRequest = { session: session.name, named: session.named, owner, prompt: input.prompt, imageId, sampling: input.sampling, masks: input.masks };
  let reply = await ask(api, req);
  if (input.image && missingSoftTokens(reply)) {
    // The header said "stored" but the tensor is gone (expired or evicted from KV): the image is at hand.
    imageId = (await encodeFor(deps, input.image, owner, true)).image_id;
    reply = await ask(api, { ...req, imageId });
  }
  if (!reply.ok) throw errorFrom(reply.error);
  return { info: reply.info, reader: new EventReader(reply.stream) };
}
