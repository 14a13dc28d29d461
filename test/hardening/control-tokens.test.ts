/**
 * Control tokens in user text (issue 10, item 6). The policy (shared/text/control-tokens.ts): the tokenizer's
 * special tokens are refused with a 422 naming the token and the field, on both APIs; `<loc>`/`<seg>` tokens
 * (added, not special) are encoded as their ids, as transformers' PaliGemmaProcessor does. Before, `<eos>` &c.
 * were encoded as the real control ids and changed the answer.
 */
import { describe, expect, it } from "vitest";
import { buildPromptIds } from "../../shared/text/prompt.ts";
import type { PaliGemmaTokenizer } from "../../shared/text/tokenizer.ts";
import { InputError } from "../../shared/errors.ts";
import type { FakeEngine } from "../serving/support/fake-engine.ts";
import { base64, createHarness, post, shapesTokenizer } from "../serving/support/harness.ts";
import { GOOD_PNG } from "./support.ts";

const tok = shapesTokenizer();
// paligemma-shapes: bos 2, eos 1, pad 0, image 1587 (its tokenizer.json), <loc0000> = 435, <seg000> = 1459.
const SPECIAL = { bos: 2, eos: 1, pad: 0, image: 1587 };
const TAIL = "; prompts are plain text (the server adds <image>, <bos> and the final newline itself; <loc>/<seg> tokens are allowed)";

function refusal(fn: () => unknown): InputError {
  try {
    fn();
  } catch (err) {
    if (err instanceof InputError) return err;
    throw err;
  }
  throw new Error("expected an InputError");
}

describe("buildPromptIds", () => {
  it("knows the tokenizer's special tokens", () => {
    expect(tok.specialTokens).toEqual(["<pad>", "<eos>", "<bos>", "<unk>", "<image>"]);
  });

  it.each(["<pad>", "<eos>", "<bos>", "<unk>", "<image>"])("refuses %s anywhere in the prefix, naming it and where", (token) => {
    const e = refusal(() => buildPromptIds(tok, `caption ${token} en`, 36, SPECIAL));
    expect([e.status, e.param, e.message]).toEqual([422, "prompt", `prompt contains the control token "${token}" at character 8${TAIL}`]);
  });

  it("names the field a token came from, by span", () => {
    const spans = [
      { param: "messages[0].content[0].text", start: 0, end: 7 },
      { param: "messages[0].content[2].text", start: 8, end: 16 },
    ];
    const e = refusal(() => buildPromptIds(tok, "caption en<eos>x", 36, SPECIAL, spans));
    expect([e.param, e.message]).toEqual(["messages[0].content[2].text", `messages[0].content[2].text contains the control token "<eos>" at character 2${TAIL}`]);
  });

  it("encodes <loc>/<seg> tokens as their ids, as transformers does", () => {
    const ids = buildPromptIds(tok, "segment <loc0100><loc0200> <seg005>", 0, SPECIAL);
    const head = [2, ...tok.encode("segment ")];
    expect(ids.slice(0, head.length)).toEqual(head);
    expect(ids).toContain(435 + 100);
    expect(ids).toContain(435 + 200);
    expect(ids).toContain(1459 + 5);
    expect(ids.filter((id) => [0, 1, 3, 1587].includes(id))).toEqual([]);
  });

  it("refuses a special id the tokenizer produced even where the text scan saw none", () => {
    const leaky = { specialTokens: [], specialIds: [0, 1, 2, 3, 1587], encode: () => [400, 1], idOf: () => 3, tokenOf: (id: number) => (id === 1 ? "<eos>" : undefined) };
    const e = refusal(() => buildPromptIds(leaky as unknown as PaliGemmaTokenizer, "x", 0, SPECIAL));
    expect([e.param, e.message]).toEqual(["prompt", `prompt contains the control token "<eos>"${TAIL}`]);
  });
});

describe("both APIs refuse control tokens before the model runs", () => {
  const image = base64(GOOD_PNG);

  it("native prompt and task question", async () => {
    const h = await createHarness();
    const prompt = await post(h.app, "/v1/generate", { image, prompt: "caption en<eos>", stream: false });
    expect([prompt.status, await prompt.json()]).toEqual([
      422,
      { error: { type: "unprocessable", message: `prompt contains the control token "<eos>" at character 10${TAIL}`, param: "prompt" } },
    ]);
    const question = await post(h.app, "/v1/generate", { image, task: "answer", question: "what is <bos> here", stream: false });
    expect([question.status, await question.json()]).toEqual([
      422,
      { error: { type: "unprocessable", message: `question contains the control token "<bos>" at character 8${TAIL}`, param: "question" } },
    ]);
    expect((h.engine as FakeEngine).calls.prefill).toBe(0);
  });

  it("chat text parts and string content, in OpenAI's shape", async () => {
    const h = await createHarness();
    const part = { type: "image_url", image_url: { url: `data:image/png;base64,${image}` } };
    const parts = [part, { type: "text", text: "caption" }, { type: "text", text: "<pad>en" }];
    const res = await post(h.app, "/v1/chat/completions", { model: "paligemma-shapes", messages: [{ role: "user", content: parts }] });
    expect([res.status, await res.json()]).toEqual([
      422,
      {
        error: {
          message: `messages[0].content[2].text contains the control token "<pad>" at character 0${TAIL}`,
          type: "invalid_request_error",
          param: "messages[0].content[2].text",
          code: null,
        },
      },
    ]);
    const session = { "x-session-id": "ctl" };
    await post(h.app, "/v1/generate", { image, prompt: "caption en", stream: false }, session);
    const text = await post(h.app, "/v1/chat/completions", { model: "paligemma-shapes", messages: [{ role: "user", content: "<unk>" }] }, session);
    expect((await text.json<any>()).error.param).toBe("messages[0].content");
    expect((h.engine as FakeEngine).calls.prefill).toBe(1); // only the good request
  });

  it("a <loc> prompt reaches the model with the loc ids", async () => {
    const seen: number[][] = [];
    const h = await createHarness({ fake: { answer: (ids) => (seen.push([...ids]), [1]) } });
    const res = await post(h.app, "/v1/generate", { image, prompt: "caption <loc0512>", stream: false });
    expect(res.status).toBe(200);
    expect(seen[0].slice(36)).toEqual([2, ...tok.encode("caption "), 435 + 512, 261]);
  });
});
