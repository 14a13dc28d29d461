/** Parsing a model folder's JSON files against their zod schemas, with one error shape. */
import type { z } from "zod";
import { ModelFormatError } from "../errors.ts";

/** `json` parsed by `schema`; throws ModelFormatError naming `file` and the first problem's path. */
export function parseOrRefuse<T extends z.ZodType>(schema: T, json: unknown, file: string): z.infer<T> {
  const r = schema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new ModelFormatError(`${file}: ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  return r.data;
}
