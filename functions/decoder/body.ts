/**
 * Request bodies at the edge: a byte limit (413), JSON only on the JSON routes (415), strict UTF-8 (400: a body
 * with invalid UTF-8 is refused, never read with replacement characters), and zod validation (400/422 with
 * `param`). The body is read once; the validator parses the text decoded here.
 */
import { zValidator } from "@hono/zod-validator";
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { z } from "zod";
import { zodToInputError } from "../../shared/api/validation.ts";
import { InputError } from "../../shared/errors.ts";

/** A body limit of `maxSize` bytes whose refusal is a 413 JSON error. */
export function limitBody(maxSize: number, what: string, param?: string): MiddlewareHandler {
  return bodyLimit({
    maxSize,
    onError: () => {
      throw new InputError("payload_too_large", `${what} is larger than ${maxSize} bytes`, param);
    },
  });
}

/** Decodes a body as UTF-8, refusing invalid sequences with a 400. */
export function strictUtf8(bytes: ArrayBuffer): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new InputError("invalid_request", "the request body is not valid UTF-8");
  }
}

/** JSON-only routes: other content types are a 415, bodies over `maxBytes()` a 413, invalid UTF-8 a 400. */
export function jsonBody(maxBytes: (c: Parameters<MiddlewareHandler>[0]) => number): MiddlewareHandler {
  return async (c, next) => {
    if (!/^application\/json\s*(;|$)/i.test(c.req.header("content-type") ?? "")) {
      throw new InputError("unsupported_media_type", "send the request as application/json", "content-type");
    }
    return limitBody(maxBytes(c), "the request body")(c, async () => {
      const text = strictUtf8(await c.req.arrayBuffer());
      // What c.req.json() parses (Hono caches body promises under their method's name).
      (c.req.bodyCache as Record<string, unknown>).text = Promise.resolve(text);
      await next();
    });
  };
}

/** Validates a JSON body with zod, turning failures into InputError (400/422 with `param`). */
export function json<S extends z.ZodType>(schema: S) {
  return zValidator("json", schema, (result) => {
    if (!result.success) throw zodToInputError(result.error);
  });
}
