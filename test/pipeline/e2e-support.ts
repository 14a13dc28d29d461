/**
 * What the pipeline's workerd tests (e2e.test.ts, spread-e2e.test.ts) share: the shapes eval cases, a JSON POST,
 * and the check that a streamed answer from a served pipeline is the unsplit model's.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { loadModel } from "../../cli/node-runtime.ts";
import { generateAll } from "../../shared/generation/generate.ts";
import { preprocessImage } from "../../shared/image/preprocess.ts";
import { vocabMask } from "../../shared/model/vocab.ts";
import { buildPromptIds } from "../../shared/text/prompt.ts";
import { PaliGemmaTokenizer } from "../../shared/text/tokenizer.ts";
import { REPO, SHAPES_MODEL } from "../helpers/golden.ts";
import { evalImage } from "../serving/support/harness.ts";
import { readSse } from "../serving/support/sse-client.ts";

/** One recorded eval case of the shapes model (its eval/cases.json). */
export interface EvalCase {
  readonly image: string;
  readonly prefix: string;
  readonly answer: string;
  readonly answer_ids: readonly number[];
}

/** The shapes model's eval cases with the reference's answers. */
export const CASES: EvalCase[] = JSON.parse(readFileSync(join(SHAPES_MODEL, "eval/cases.json"), "utf8")).cases;

/** POSTs `body` as JSON to `url` + `path`. */
export const postJson = (url: string, path: string, body: unknown) =>
  fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

/**
 * Streams a caption of an eval image from the server at `url` and expects the eval's reference ids, and the ids
 * and logprobs (within 1e-5) of the unsplit model (the committed one) run in Node's kernel engine.
 */
export async function expectUnsplitStream(url: string): Promise<void> {
  const c = CASES.find((x) => x.image === "img_001_160x120.png" && x.prefix === "caption en")!;
  const { image_id } = await (await fetch(`${url}/v1/images`, { method: "POST", headers: { "content-type": "image/png" }, body: evalImage(c.image) })).json<any>();
  const { events } = await readSse(await postJson(url, "/v1/generate", { image_id, prompt: c.prefix, max_tokens: 24 }));
  const tokens = events.filter((e) => e.event === "token").map((e) => JSON.parse(e.data));
  const dir = join(REPO, "model-shards/paligemma-shapes");
  const whole = await loadModel(dir, { vision: "kernel", prefill: "kernel", decode: "kernel" });
  const tok = PaliGemmaTokenizer.fromJson(JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")));
  const soft = await whole.encodeImage(await preprocessImage(evalImage(c.image), whole.manifest.preprocess, { maxPixels: 2 ** 21 }));
  const ids = buildPromptIds(tok, c.prefix, whole.config.imageTokens, whole.config.tokens);
  const ref = await generateAll(whole, soft, ids, { sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, maxTokens: 24, eos: [whole.config.tokens.eos], mask: vocabMask(whole.manifest), tokenizer: tok });
  expect(tokens.map((t) => t.id)).toEqual([...c.answer_ids]);
  expect(tokens.map((t) => t.id)).toEqual([...ref.ids]);
  const worst = Math.max(...tokens.map((t, i) => Math.abs(t.logprob - ref.tokens[i].logprob)));
  expect(worst).toBeLessThanOrEqual(1e-5);
}

/** Each case's image and prompt through the native API (greedy, 24 new tokens, not streamed) gives its reference answer, text and ids. */
export async function expectEvalAnswers(url: string, cases: readonly EvalCase[]): Promise<void> {
  const mismatches: string[] = [];
  for (const c of cases) {
    const { image_id } = (await (await fetch(`${url}/v1/images`, { method: "POST", headers: { "content-type": "image/png" }, body: evalImage(c.image) })).json()) as { image_id: string };
    const body = (await (await postJson(url, "/v1/generate", { image_id, prompt: c.prefix, max_tokens: 24, stream: false })).json()) as { text?: string; ids?: number[] };
    if (body.text !== c.answer || JSON.stringify(body.ids) !== JSON.stringify(c.answer_ids)) mismatches.push(`${c.image} "${c.prefix}": got ${JSON.stringify(body.text ?? body)}`);
  }
  expect(mismatches).toEqual([]);
}
