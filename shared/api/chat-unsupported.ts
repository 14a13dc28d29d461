/**
 * OpenAI request fields that would change the answer and that this server cannot honour. Each is refused with a
 * 400 naming it (`param`, code `unsupported_value`) instead of being ignored, unless it holds its neutral value,
 * the one that asks for nothing (`logit_bias: {}`, `frequency_penalty: 0`, `tools: []`, …): clients and
 * frameworks send those by default, and accepting them changes nothing. Fields that do not change the answer
 * (`user`, `metadata`, `store`, `service_tier`, `parallel_tool_calls`, `prediction`, unknown ones) are ignored.
 */
import { InputError } from "../errors.ts";

/** One refused field: when its value is neutral, and why anything else is refused. */
interface Refusal {
  readonly neutral: (value: unknown) => boolean;
  readonly why: string;
}

const isNull = (v: unknown): boolean => v === null || v === undefined;
const isZero = (v: unknown): boolean => isNull(v) || v === 0;
const isEmptyArray = (v: unknown): boolean => isNull(v) || (Array.isArray(v) && v.length === 0);
const isEmptyObject = (v: unknown): boolean =>
  isNull(v) || (typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 0);
const oneOf =
  (...values: unknown[]) =>
  (v: unknown): boolean =>
    isNull(v) || values.includes(v);

const TOOLS = "PaliGemma cannot call tools";

/** The refused fields, in the order they are checked. */
export const REFUSED_FIELDS: Readonly<Record<string, Refusal>> = Object.freeze({
  n: { neutral: oneOf(1), why: "only n = 1 is supported (one answer per request)" },
  logit_bias: { neutral: isEmptyObject, why: "logit_bias is not supported; leave it out or send {}" },
  frequency_penalty: { neutral: isZero, why: "frequency_penalty is not supported; leave it out or send 0" },
  presence_penalty: { neutral: isZero, why: "presence_penalty is not supported; leave it out or send 0" },
  tools: { neutral: isEmptyArray, why: `tools are not supported: ${TOOLS}` },
  tool_choice: { neutral: oneOf("none", "auto"), why: `tool_choice may only be "none" or "auto": ${TOOLS}` },
  functions: { neutral: isEmptyArray, why: `functions are not supported: ${TOOLS}` },
  function_call: { neutral: oneOf("none", "auto"), why: `function_call may only be "none" or "auto": ${TOOLS}` },
  response_format: {
    neutral: (v) => isNull(v) || (typeof v === "object" && (v as { type?: unknown }).type === "text" && Object.keys(v as object).length === 1),
    why: 'only {"type": "text"} responses are supported (no JSON mode or schemas)',
  },
  modalities: { neutral: (v) => isNull(v) || (Array.isArray(v) && v.length === 1 && v[0] === "text"), why: 'only ["text"] output is supported' },
  audio: { neutral: isNull, why: "audio output is not supported" },
  reasoning_effort: { neutral: isNull, why: "reasoning_effort is not supported: PaliGemma is not a reasoning model" },
  web_search_options: { neutral: isNull, why: "web search is not supported" },
});

/** Throws InputError 400 (code `unsupported_value`, `param` the field) for the first refused non-neutral field. */
export function refuseUnsupported(body: Readonly<Record<string, unknown>>): void {
  for (const [field, refusal] of Object.entries(REFUSED_FIELDS)) {
    if (!refusal.neutral(body[field])) throw new InputError("invalid_request", `${field}: ${refusal.why}`, field, "unsupported_value");
  }
  if (!isNull(body.stream_options) && body.stream !== true) {
    throw new InputError("invalid_request", "stream_options: only allowed when stream is true", "stream_options");
  }
}
