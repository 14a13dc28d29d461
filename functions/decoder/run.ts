/**
 * The part of a generate request both APIs share: resolve the session id, send an inline image to the vision
 * worker, and hand the request to the session, turning its errors back into InputErrors.
 */
import type { Context } from "hono";
import { EventReader, type RunInfo } from "../../shared/api/events.ts";
import type { SamplingParams } from "../../shared/api/params.ts";
import { InputError } from "../../shared/errors.ts";
import type { DecoderDeps } from "./deps.ts";
import { errorFrom } from "./render.ts";

/** Header that names a session (the body field `session` does too). */
export const SESSION_HEADER = "x-session-id";

/** A generate request after API-specific parsing. */
export interface RunInput {
  readonly session?: string;
  readonly model?: string;
  readonly prompt: string;
  readonly image?: Uint8Array;
  readonly imageId?: string;
  readonly sampling: SamplingParams;
}

/** The session id of a request: the header or the body field (which must agree), else a new one. */
export function sessionName(c: Context, bodySession: string | undefined): string {
  const header = c.req.header(SESSION_HEADER);
  if (header !== undefined && !/^[A-Za-z0-9_.:-]{1,128}$/.test(header)) {
    throw new InputError("invalid_request", `${SESSION_HEADER}: a session id is 1-128 characters of A-Z a-z 0-9 _ . : -`, SESSION_HEADER);
  }
  if (header !== undefined && bodySession !== undefined && header !== bodySession) {
    throw new InputError("invalid_request", `the ${SESSION_HEADER} header and the session field name different sessions`, "session");
  }
  return bodySession ?? header ?? crypto.randomUUID();
}

/** Checks the request against the deployment, encodes an inline image, and starts the session's stream. */
export async function startRun(deps: DecoderDeps, name: string, input: RunInput): Promise<{ info: RunInfo; reader: EventReader }> {
  if (input.model !== undefined && input.model !== deps.modelId) {
    throw new InputError("not_found", `model "${input.model}" is not served here; GET /v1/models lists "${deps.modelId}"`, "model");
  }
  if (input.sampling.maxTokens > deps.maxNewTokens) {
    throw new InputError("invalid_request", `max_tokens must be at most ${deps.maxNewTokens}`, "max_tokens");
  }
  let imageId = input.imageId;
  if (input.image) {
    const encoded = await deps.encodeImage(input.image);
    if (!encoded.ok) throw errorFrom(encoded.error);
    imageId = encoded.image.image_id;
  }
  const reply = await deps.session(name).generate({ session: name, prompt: input.prompt, imageId, sampling: input.sampling });
  if (!reply.ok) throw errorFrom(reply.error);
  return { info: reply.info, reader: new EventReader(reply.stream) };
}
