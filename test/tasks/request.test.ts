import { describe, expect, it } from "vitest";
import { z } from "zod";
import { zodToInputError } from "../../shared/api/validation.ts";
import { InputError } from "../../shared/errors.ts";
import { prefixTask, resolvePrefix, taskFields, taskPrefix, taskSchema } from "../../shared/tasks/index.ts";

/** Asserts that `fn` throws an InputError with this status and param. */
function expectInputError(fn: () => unknown, status: number, param: string | undefined, message?: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(InputError);
  const error = caught as InputError;
  expect({ status: error.status, param: error.param }).toEqual({ status, param });
  if (message) expect(error.message).toMatch(message);
}

describe("task requests → PaliGemma prefixes", () => {
  it.each([
    [{ task: "caption", lang: "en" }, "caption en"],
    [{ task: "caption" }, "caption en"],
    [{ task: "caption", lang: "pt-BR" }, "caption pt-BR"],
    [{ task: "answer", question: "how many shapes", lang: "en" }, "answer en how many shapes"],
    [{ task: "answer", question: "  what color is the circle " }, "answer en what color is the circle"],
    [{ task: "answer", question: "wie viele?", lang: "de" }, "answer de wie viele?"],
    [{ task: "detect", objects: ["circle"] }, "detect circle"],
    [{ task: "detect", objects: ["circle", "square"] }, "detect circle ; square"],
    [{ task: "detect", objects: [" red car ", "dog"] }, "detect red car ; dog"],
    [{ task: "segment", objects: ["cat", "dog", "bird"] }, "segment cat ; dog ; bird"],
    [{ task: "ocr" }, "ocr"],
  ])("%j → %j", (body, prefix) => {
    expect(resolvePrefix(body)).toBe(prefix);
    expect(taskPrefix(taskSchema.parse(body))).toBe(prefix);
  });

  it("passes a free prompt through unchanged", () => {
    expect(resolvePrefix({ prompt: "detect circle" })).toBe("detect circle");
    expect(resolvePrefix({ prompt: "" })).toBe("");
  });

  it.each([
    ["unknown task", { task: "translate" }, "task", /unknown task "translate"/],
    ["empty object list", { task: "detect", objects: [] }, "objects", /at least one object/],
    ["empty segment list", { task: "segment", objects: [] }, "objects", /at least one object/],
    ["detect without objects", { task: "detect" }, "objects", undefined],
    ["blank object name", { task: "detect", objects: ["cat", "  "] }, "objects[1]", /empty/],
    ["object name with the separator", { task: "detect", objects: ["cat ; dog"] }, "objects[0]", /";"/],
    ["object name with a loc token", { task: "detect", objects: ["<loc0001>"] }, "objects[0]", undefined],
    ["answer without question", { task: "answer" }, "question", undefined],
    ["question with a line break", { task: "answer", question: "a\nb" }, "question", /line break/],
    ["bad language code", { task: "caption", lang: "English" }, "lang", /language code/],
    ["field of another task", { task: "detect", objects: ["a"], lang: "en" }, "lang", /does not apply to task "detect"/],
    ["ocr with objects", { task: "ocr", objects: ["a"] }, "objects", /does not apply/],
    ["prompt and task", { prompt: "caption en", task: "caption" }, "task", /either prompt or task/],
    ["neither prompt nor task", {}, "prompt", /give a prompt or a task/],
    ["task field without task", { prompt: "detect a", objects: ["a"] }, "objects", /only applies together with task/],
  ])("%s is a 400", (_, body, param, message) => {
    expectInputError(() => resolvePrefix(body as never), 400, param, message);
  });

  it("limits the object list", () => {
    const objects = Array.from({ length: 33 }, (_, i) => `o${i}`);
    expectInputError(() => resolvePrefix({ task: "detect", objects }), 400, "objects");
    expect(resolvePrefix({ task: "detect", objects: objects.slice(0, 32) })).toMatch(/^detect o0 ; o1 ; .* ; o31$/);
  });
});

describe("taskFields merge into a strict request schema", () => {
  // The way the serving engineer's generate schema is built: strict, prompt optional, the task fields spread in.
  const requestSchema = z.strictObject({ prompt: z.string().optional(), max_tokens: z.int().optional(), ...taskFields });

  it("accepts task requests and resolves their prefix", () => {
    const body = requestSchema.parse({ task: "detect", objects: ["circle", "square"], max_tokens: 24 });
    expect(resolvePrefix(body)).toBe("detect circle ; square");
  });

  it("rejects an unknown task at the schema with a 400 on `task`", () => {
    const result = requestSchema.safeParse({ task: "translate" });
    expect(result.success).toBe(false);
    const error = zodToInputError(result.error!);
    expect({ status: error.status, param: error.param }).toEqual({ status: 400, param: "task" });
  });

  it("rejects an empty object list at the schema with a 400 on `objects`", () => {
    const result = requestSchema.safeParse({ task: "detect", objects: [] });
    expect(result.success).toBe(false);
    const error = zodToInputError(result.error!);
    expect({ status: error.status, param: error.param }).toEqual({ status: 400, param: "objects" });
  });
});

describe("prefixTask reads the task word of any prefix", () => {
  it.each([
    ["detect circle ; square", "detect"],
    ["segment cat", "segment"],
    ["caption en", "caption"],
    ["answer en how many", "answer"],
    ["ocr", "ocr"],
    ["  detect cat", "detect"],
    ["detection of cats", null],
    ["describe the image", null],
    ["", null],
  ])("%j → %j", (prefix, task) => {
    expect(prefixTask(prefix)).toBe(task);
  });
});
