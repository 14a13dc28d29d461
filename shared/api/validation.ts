/**
 * Turning zod validation failures into the API's InputError, so every bad request gets the same
 * `{"error": {"type", "message", "param"}}` body from the one error handler.
 */
import type { z } from "zod";
import { InputError } from "../errors.ts";

/** Formats an issue path the way clients write it: `messages[0].content[1].image_url.url`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out.length === 0 ? String(key) : `.${String(key)}`;
  }
  return out;
}

/** The first issue of a zod error as a 400 InputError (422 when the input parsed but broke a refinement). */
export function zodToInputError(error: z.core.$ZodError): InputError {
  const issue = error.issues[0];
  if (!issue) return new InputError("invalid_request", "invalid request body");
  const param = formatPath(issue.path);
  let message = issue.message;
  if (issue.code === "unrecognized_keys") message = `unknown field(s): ${issue.keys.join(", ")}`;
  const prefix = param.length > 0 ? `${param}: ` : "";
  const type = issue.code === "custom" ? "unprocessable" : "invalid_request";
  return new InputError(type, `${prefix}${message}`, param.length > 0 ? param : undefined);
}

/** Parses `value` with `schema`, throwing the InputError of the first issue. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw zodToInputError(result.error);
  return result.data;
}
