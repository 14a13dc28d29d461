/**
 * Turning zod validation failures into the API's InputError, so every bad request gets the same
 * `{"error": {"type", "message", "param"}}` body from the one error handler.
 */
import type { z } from "zod";
import { echo, InputError } from "../errors.ts";

/** Formats an issue path the way clients write it: `messages[0].content[1].image_url.url`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out.length === 0 ? String(key) : `.${String(key)}`;
  }
  return out;
}

type Issue = z.core.$ZodIssue;

/**
 * The issue that says what is wrong. A union (string | parts) whose value matched one option's shape reports
 * that option's own first issue, with its full path (`content[1].text`), not "invalid input" at the union.
 */
function innermost(issue: Issue): { issue: Issue; path: readonly PropertyKey[] } {
  if (issue.code === "invalid_union" && issue.errors.length > 0) {
    const deeper = issue.errors.map((option) => option[0]).filter((first) => first !== undefined && first.path.length > 0);
    if (deeper.length === 1) {
      const inner = innermost(deeper[0]!);
      return { issue: inner.issue, path: [...issue.path, ...inner.path] };
    }
  }
  return { issue, path: issue.path };
}

/** The first issue of a zod error as a 400 InputError (422 when the input parsed but broke a refinement). */
export function zodToInputError(error: z.core.$ZodError): InputError {
  const first = error.issues[0];
  if (!first) return new InputError("invalid_request", "invalid request body");
  const { issue, path } = innermost(first);
  const param = formatPath(path);
  let message = issue.message;
  if (issue.code === "unrecognized_keys") {
    const shown = issue.keys.slice(0, 5).map((k) => echo(k, 40));
    message = `unknown field(s): ${shown.join(", ")}${issue.keys.length > 5 ? ` and ${issue.keys.length - 5} more` : ""}`;
  }
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
