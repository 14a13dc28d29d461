/**
 * Through the HTTP API (the decoder and vision apps in process, app.request): the shapes model split one decoder
 * layer per stage and the head in 2 vocabulary shards, served by the pipeline coordinator, answers the native and
 * OpenAI routes with exactly the ids, text and logprobs (top logprobs included) of the same checkpoint served
 * whole, greedy and seeded. (The tiny goldens ship no tokenizer, so they are compared at the engine:
 * coordinator.test.ts.)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convert } from "../../converter/convert.ts";
import { initKernelForNode } from "../../shared/kernel/node.ts";
import { SHAPES_MODEL } from "../helpers/golden.ts";
import { base64, createHarness, evalImage, post, type Harness } from "../serving/support/harness.ts";
import { pipelineOf, wholeAt } from "./support.ts";

const work = mkdtempSync(join(tmpdir(), "pg-pipeline-http-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let split: Harness;
let whole: Harness;

beforeAll(async () => {
  await initKernelForNode();
  const p = await pipelineOf(SHAPES_MODEL, join(work, "split"), { dtype: "fp32", mlpParts: 1, headRowsPerStage: 800 });
  await convert(SHAPES_MODEL, join(work, "whole"), { dtype: "fp32" });
  split = await createHarness({ engine: p.engine });
  whole = await createHarness({ engine: await wholeAt(join(work, "whole")) });
});

const IMAGES = ["img_001_160x120.png", "img_002_200x200.png", "img_003_77x133.png"];

describe("the HTTP API over a pipeline", () => {
  it("native /v1/generate: greedy and seeded answers, ids and logprobs exactly the unsplit model's", async () => {
    for (const name of IMAGES) {
      const image = base64(evalImage(name));
      for (const params of [{ prompt: "caption en" }, { prompt: "detect circle ; square" }, { prompt: "caption en", temperature: 1, seed: 5, top_k: 20 }, { prompt: "answer en how many shapes", temperature: 0.7, top_p: 0.9, seed: 9 }]) {
        const body = { image, max_tokens: 24, stream: false, ...params };
        const [a, b] = await Promise.all([post(whole.app, "/v1/generate", body), post(split.app, "/v1/generate", body)]);
        const [ja, jb] = [await a.json<any>(), await b.json<any>()];
        expect([a.status, b.status], JSON.stringify(jb)).toEqual([200, 200]);
        expect(jb.ids.length).toBeGreaterThan(0);
        expect({ text: jb.text, ids: jb.ids, tokens: jb.tokens }, `${name} ${JSON.stringify(params)}`).toEqual({ text: ja.text, ids: ja.ids, tokens: ja.tokens });
      }
    }
  });

  it("OpenAI /v1/chat/completions with logprobs and top_logprobs: the same choices", async () => {
    for (const name of IMAGES) {
      const url = `data:image/png;base64,${base64(evalImage(name))}`;
      const messages = [{ role: "user", content: [{ type: "image_url", image_url: { url } }, { type: "text", text: "caption en" }] }];
      for (const extra of [{}, { temperature: 1.2, seed: 3 }]) {
        const body = { model: "paligemma-shapes", messages, logprobs: true, top_logprobs: 4, max_tokens: 24, ...extra };
        const [a, b] = await Promise.all([post(whole.app, "/v1/chat/completions", body), post(split.app, "/v1/chat/completions", body)]);
        const [ja, jb] = [await a.json<any>(), await b.json<any>()];
        expect([a.status, b.status], JSON.stringify(jb)).toEqual([200, 200]);
        expect(jb.choices[0].logprobs.content.length).toBeGreaterThan(0);
        expect(jb.choices, `${name} ${JSON.stringify(extra)}`).toEqual(ja.choices);
      }
    }
  });
});
