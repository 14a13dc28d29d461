/**
 * LoRA end to end: `npm start`'s two workers (wrangler dev, the committed model with `shapes-lora-a` in its static
 * assets) over HTTP. Eval prompts asked of `paligemma-shapes:shapes-lora-a` get the merged model's answers
 * (computed here in Node from ../shared/golden-lora/shapes-lora-a/merged); requests for the adapter and for the
 * base, streamed at the same time on one isolate, each get their own model's answer; the memory the adapter costs
 * is its factor bytes, reported by the session (decoder side) and /v1/info (vision side).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel } from "../../cli/node-runtime.ts";
import { loadTokenizer } from "../../cli/model-io.ts";
import { convert } from "../../converter/convert.ts";
import { KERNEL_BACKENDS } from "../../shared/engine/engine.ts";
import { generateAll } from "../../shared/generation/generate.ts";
import { provideImageCodecsForNode } from "../../shared/image/codecs-node.ts";
import { preprocessImage } from "../../shared/image/index.ts";
import { vocabMask } from "../../shared/model/vocab.ts";
import { buildPromptIds } from "../../shared/text/prompt.ts";
import { SHARED, SHAPES_MODEL } from "../helpers/golden.ts";
import { EVAL_PROMPTS } from "../lora/support.ts";
import { startDevServer, type DevServer } from "./support/dev-server.ts";
import { base64, evalImage } from "./support/harness.ts";
import { readSse } from "./support/sse-client.ts";

const ADAPTER = "paligemma-shapes:shapes-lora-a";
const CASES: { image: string; prefix: string; answer: string }[] = JSON.parse(readFileSync(join(SHAPES_MODEL, "eval/cases.json"), "utf8")).cases;
const work = mkdtempSync(join(tmpdir(), "pg-lora-e2e-"));
const merged = new Map<string, string>(); // "image|prefix" → the merged model's greedy answer
let server: DevServer;

beforeAll(async () => {
  await convert(join(SHARED, "golden-lora/shapes-lora-a/merged"), join(work, "merged"), { dtype: "fp32", id: "paligemma-shapes" });
  const engine = await loadModel(join(work, "merged"), KERNEL_BACKENDS);
  const tok = loadTokenizer(join(work, "merged"), engine)!;
  await provideImageCodecsForNode();
  for (const [image, prefix] of EVAL_PROMPTS) {
    const pixels = await preprocessImage(evalImage(image), engine.manifest.preprocess, { maxPixels: 1e6 });
    const ids = buildPromptIds(tok, prefix, engine.config.imageTokens, engine.config.tokens);
    const r = await generateAll(engine, await engine.encodeImage(pixels), ids, { sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, maxTokens: 24, eos: [engine.config.tokens.eos], mask: vocabMask(engine.manifest), tokenizer: tok });
    merged.set(`${image}|${prefix}`, r.text);
  }
  server = await startDevServer();
}, 180_000);

afterAll(async () => {
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

const postJson = (path: string, body: unknown) => fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const baseAnswer = (image: string, prefix: string) => CASES.find((c) => c.image === image && c.prefix === prefix)!.answer;

describe("npm start with an adapter", () => {
  it("lists the adapter as a model with its parent", async () => {
    const models = await (await fetch(`${server.url}/v1/models`)).json<any>();
    expect(models.data.map((m: any) => [m.id, m.parent ?? null])).toEqual([["paligemma-shapes", null], [ADAPTER, "paligemma-shapes"]]);
  });

  it("answers eval prompts as the merged model, through the OpenAI client and the native API", async () => {
    const openai = new OpenAI({ apiKey: "unused", baseURL: `${server.url}/v1`, maxRetries: 0 });
    let differ = 0;
    for (const [image, prefix] of EVAL_PROMPTS) {
      const want = merged.get(`${image}|${prefix}`)!;
      const url = `data:image/png;base64,${base64(evalImage(image))}`;
      const r = await openai.chat.completions.create({ model: ADAPTER, max_tokens: 24, messages: [{ role: "user", content: [{ type: "image_url", image_url: { url } }, { type: "text", text: prefix }] }] });
      expect([r.model, r.choices[0].message.content], `${image}: ${prefix}`).toEqual([ADAPTER, want]);
      const native = await (await postJson("/v1/generate", { image: base64(evalImage(image)), prompt: prefix, adapter: "shapes-lora-a", stream: false, max_tokens: 24 })).json<any>();
      expect(native.text).toBe(want);
      if (want !== baseAnswer(image, prefix)) differ++;
    }
    expect(differ, "the adapter changes some answers").toBeGreaterThan(0);
  });

  it("streams for the adapter and for the base at the same time, each its own model's answer", async () => {
    const image = "img_001_160x120.png";
    const prefix = "detect circle";
    const runs = ["shapes-lora-a", null, "shapes-lora-a", null].map((adapter, i) =>
      postJson("/v1/generate", { image: base64(evalImage(image)), prompt: prefix, max_tokens: 24, session: `mix-${i}`, ...(adapter ? { model: `paligemma-shapes:${adapter}` } : {}) }),
    );
    const texts = await Promise.all(runs.map(async (r) => JSON.parse((await readSse(await r)).events.at(-1)!.data).text));
    const want = [merged.get(`${image}|${prefix}`), baseAnswer(image, prefix)];
    expect(want[0]).not.toBe(want[1]);
    expect(texts).toEqual([want[0], want[1], want[0], want[1]]);
  });

  it("costs its factor bytes: the session reports the decoder's, /v1/info the vision tower's", async () => {
    await postJson("/v1/generate", { image: base64(evalImage("img_000_96x96.png")), prompt: "caption en", model: ADAPTER, stream: false, session: "lora-bytes" });
    const session = await (await fetch(`${server.url}/v1/sessions/lora-bytes`)).json<any>();
    expect(session.engine.adapters).toEqual([{ name: "shapes-lora-a", bytes: 442368 }]);
    expect(session.engine.adapterBytes).toBe(442368);
    const info = await (await fetch(`${server.url}/v1/info`)).json<any>();
    expect(info.vision.engine.adapters).toEqual([{ name: "shapes-lora-a", bytes: 98304 }]);
  });

  it("an unknown adapter is a 404 naming it", async () => {
    const res = await postJson("/v1/generate", { image: base64(evalImage("img_000_96x96.png")), prompt: "caption en", model: "paligemma-shapes:other", stream: false });
    expect(res.status).toBe(404);
    expect((await res.json<any>()).error).toMatchObject({ type: "not_found", param: "model", message: expect.stringContaining('adapter "other" of model paligemma-shapes is not served here') });
  });
});
