/**
 * Task requests: a structured alternative to a free `prompt` in the native API.
 *
 *   {"task": "caption", "lang": "en"}                          → "caption en"
 *   {"task": "answer", "question": "what is this", "lang": "en"} → "answer en what is this"
 *   {"task": "detect", "objects": ["circle", "square"]}          → "detect circle ; square"
 *   {"task": "segment", "objects": ["cat"]}                      → "segment cat"
 *   {"task": "ocr"}                                              → "ocr"
 *
 * The prefixes are PaliGemma's task prefixes (docs/model-notes.md, "Prompt"; big_vision's PaliGemma README):
 * `caption {lang}`, `answer {lang} {question}`, `detect {obj} ; {obj}`, `segment {obj} ; {obj}`, `ocr`.
 *
 * The task fields sit at the top level of the generate request, beside `image`, `max_tokens` and so on, so they
 * are exported twice: {@link taskFields} (optional fields to spread into the request's strict object) and
 * {@link taskSchema} (the discriminated union that checks which fields each task takes).
 */
import { z } from "zod";
import { InputError } from "../errors.ts";
import { zodToInputError } from "../api/validation.ts";

/** The task names a request may give. */
export const TASK_NAMES = Object.freeze(["caption", "answer", "detect", "segment", "ocr"] as const);

/** One of {@link TASK_NAMES}. */
export type TaskName = (typeof TASK_NAMES)[number];

/** Language used when a caption/answer task gives none (the shapes model and most demos use English). */
export const DEFAULT_LANG = "en";
/** Most objects one detect/segment request may list. */
export const MAX_OBJECTS = 32;
/** Longest object name, in characters. */
export const MAX_OBJECT_CHARS = 64;
/** Longest question, in characters. */
export const MAX_QUESTION_CHARS = 1000;

/** A language code as PaliGemma's multilingual prefixes use them: `en`, `de`, `zh`, `pt-BR`. */
const langSchema = z
  .string()
  .regex(/^[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?$/, 'lang is a language code such as "en", "de" or "pt-BR"');

/** Line breaks end PaliGemma's prefix ("\n" follows it), and ";" separates objects. */
const objectName = z
  .string()
  .trim()
  .min(1, "an object name is empty")
  .max(MAX_OBJECT_CHARS)
  .regex(/^[^;\r\n<>]+$/, 'an object name may not contain ";", "<", ">" or a line break');

const objectsSchema = z
  .array(objectName)
  .min(1, "objects lists at least one object to look for")
  .max(MAX_OBJECTS);

const questionSchema = z
  .string()
  .trim()
  .min(1, "the question is empty")
  .max(MAX_QUESTION_CHARS)
  .regex(/^[^\r\n]+$/, "the question may not contain a line break");

/** The task fields, each optional, to spread into a strict request object: `z.strictObject({...taskFields, …})`. */
export const taskFields = {
  task: z.enum(TASK_NAMES).optional(),
  lang: langSchema.optional(),
  question: questionSchema.optional(),
  objects: objectsSchema.optional(),
};

/** Zod schema of one task request: each task accepts only its own fields. */
export const taskSchema = z.discriminatedUnion("task", [
  z.strictObject({ task: z.literal("caption"), lang: langSchema.default(DEFAULT_LANG) }),
  z.strictObject({ task: z.literal("answer"), question: questionSchema, lang: langSchema.default(DEFAULT_LANG) }),
  z.strictObject({ task: z.literal("detect"), objects: objectsSchema }),
  z.strictObject({ task: z.literal("segment"), objects: objectsSchema }),
  z.strictObject({ task: z.literal("ocr") }),
]);

/** The fields each task takes besides `task`. */
const TASK_FIELDS: Readonly<Record<TaskName, readonly string[]>> = {
  caption: ["lang"],
  answer: ["question", "lang"],
  detect: ["objects"],
  segment: ["objects"],
  ocr: [],
};

/** A validated task request. */
export type TaskRequest = z.output<typeof taskSchema>;

/** The PaliGemma prefix for a validated task. */
export function taskPrefix(task: TaskRequest): string {
  switch (task.task) {
    case "caption":
      return `caption ${task.lang}`;
    case "answer":
      return `answer ${task.lang} ${task.question}`;
    case "detect":
    case "segment":
      return `${task.task} ${task.objects.join(" ; ")}`;
    case "ocr":
      return "ocr";
  }
}

/** The prompt-or-task part of a generate request body (other fields of the body are ignored). */
export interface PromptOrTask {
  readonly prompt?: string;
  readonly task?: string;
  readonly lang?: string;
  readonly question?: string;
  readonly objects?: readonly string[];
}

/**
 * The prefix a request asks for: its `prompt`, or the prefix of its `task`. Exactly one of them must be given,
 * and `lang`/`question`/`objects` only go with a task that uses them.
 * @throws InputError 400 (missing/conflicting fields, unknown task, empty object list, …)
 */
export function resolvePrefix(body: PromptOrTask): string {
  const { prompt, task, lang, question, objects } = body; // other request fields are not ours to check
  const given = Object.entries({ lang, question, objects }).filter(([, value]) => value !== undefined);
  if (task === undefined) {
    if (prompt === undefined) throw new InputError("invalid_request", "give a prompt or a task", "prompt");
    const first = given[0];
    if (first) throw new InputError("invalid_request", `${first[0]} only applies together with task`, first[0]);
    return prompt;
  }
  if (prompt !== undefined) throw new InputError("invalid_request", "give either prompt or task, not both", "task");
  const name = TASK_NAMES.find((t) => t === task);
  if (name === undefined) {
    throw new InputError("invalid_request", `task: unknown task "${task}"; use one of ${TASK_NAMES.join(", ")}`, "task");
  }
  const stray = given.find(([key]) => !TASK_FIELDS[name].includes(key));
  if (stray) throw new InputError("invalid_request", `${stray[0]} does not apply to task "${name}"`, stray[0]);
  const parsed = taskSchema.safeParse({ task, ...Object.fromEntries(given) });
  if (!parsed.success) {
    const error = zodToInputError(parsed.error);
    throw new InputError("invalid_request", error.message, error.param); // always a malformed request: 400
  }
  return taskPrefix(parsed.data);
}

/** The kinds of answer a prefix asks for, read from its first word (works for free prompts too). */
export function prefixTask(prefix: string): TaskName | null {
  const word = /^\s*([a-z]+)(?:\s|$)/.exec(prefix)?.[1];
  return (TASK_NAMES as readonly string[]).includes(word ?? "") ? (word as TaskName) : null;
}
