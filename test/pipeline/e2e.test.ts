/**
 * The pipeline in workerd: the shapes model converted at --max-shard-mb 2 (7 stages: 2 vision, 4 decoder, 1
 * head) served by `wrangler dev` with one stage Worker per stage (configs from scripts/stage-configs.ts, as
 * `MODEL_ID=<id> npm start` writes them), the session Durable Object and the vision worker coordinating them.
 * All 247 eval prompts give the ids and text the unsplit model gives (the recorded reference answers, which
 * test/tasks/eval.test.ts checks the unsplit model against); a streamed answer's logprobs are the unsplit
 * model's (computed here in Node by the whole-model kernel engine); GET /v1/models lists every stage and whether
 * it is loaded. The golden LoRA adapter (shapes-lora-a, converted into the cut model, so cut like it) goes
 * through the stage workers: eval prompts asked of `shapes-split:shapes-lora-a` get its merged checkpoint's
 * answers (computed here in Node), interleaved with base requests that keep the base's. Then, restarted with
 * decoder-2 keeping one session's cache, a session whose cache another one evicted there gets the same answer
 * again (rebuilt by replay); and restarted with a head worker whose model is missing, the server answers 503 with
 * retry-after and stays healthy.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convert } from "../../converter/convert.ts";
import { convertAdapter } from "../../converter/adapter/convert-adapter.ts";
import { loadTokenizer } from "../../cli/model-io.ts";
import { EVAL_PROMPTS, GOLDEN_LORA } from "../lora/support.ts";
import { loadModel } from "../../cli/node-runtime.ts";
import { preprocessImage } from "../../shared/image/preprocess.ts";
import { generateAll } from "../../shared/generation/generate.ts";
import { vocabMask } from "../../shared/model/vocab.ts";
import { buildPromptIds } from "../../shared/text/prompt.ts";
import { writePipelineConfigs, type PipelineConfigs } from "../../scripts/stage-configs.ts";
import { SHAPES_MODEL } from "../helpers/golden.ts";
import { startDevServer, type DevServer } from "../serving/support/dev-server.ts";
import { evalImage } from "../serving/support/harness.ts";
import { readSse } from "../serving/support/sse-client.ts";
import { CASES, expectUnsplitStream, postJson } from "./e2e-support.ts";

const work = mkdtempSync(join(tmpdir(), "pg-pipeline-e2e-"));
const ID = "shapes-split";
let configs: PipelineConfigs;
let server: DevServer;
const merged = new Map<string, string>(); // "image|prefix" → shapes-lora-a's merged model's greedy answer

beforeAll(async () => {
  const manifest = await convert(SHAPES_MODEL, join(work, "models", ID), { dtype: "fp32", maxShardMb: 2 });
  await convertAdapter(GOLDEN_LORA, join(work, "models", ID, "adapters/shapes-lora-a"));
  await convert(join(GOLDEN_LORA, "merged"), join(work, "merged"), { dtype: "fp32", id: ID });
  const m = await loadModel(join(work, "merged"), { vision: "kernel", prefill: "kernel", decode: "kernel" });
  const tok = loadTokenizer(join(work, "merged"), m)!;
  for (const [image, prefix] of EVAL_PROMPTS) {
    const pixels = await preprocessImage(evalImage(image), m.manifest.preprocess, { maxPixels: 2 ** 21 });
    const ids = buildPromptIds(tok, prefix, m.config.imageTokens, m.config.tokens);
    const r = await generateAll(m, await m.encodeImage(pixels), ids, { sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, maxTokens: 24, eos: [m.config.tokens.eos], mask: vocabMask(m.manifest), tokenizer: tok });
    merged.set(`${image}|${prefix}`, r.text);
  }
  configs = writePipelineConfigs(manifest, join(work, "configs"), { source: "assets", modelsDir: join(work, "models"), modelId: ID });
  server = await startDevServer({ configs: [configs.decoder, configs.vision, ...configs.stages], vars: { RATE_LIMIT_RPM: "0" }, timeoutMs: 240_000 });
}, 300_000);
afterAll(async () => {
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe("a 7-stage model served as a pipeline of stage workers", () => {
  it("GET /v1/models lists every stage, none loaded before the first request", async () => {
    const body = await (await fetch(`${server.url}/v1/models`)).json<any>();
    const stages = body.data[0].stages.map((s: any) => [s.name, s.kind, s.from, s.to, s.loaded]);
    expect(body.data[0].id).toBe(ID);
    expect(stages).toEqual([
      ["vision-0", "vision", 0, 2, false],
      ["vision-1", "vision", 2, 4, false],
      ["decoder-0", "decoder", 0, 1, false],
      ["decoder-1", "decoder", 1, 2, false],
      ["decoder-2", "decoder", 2, 3, false],
      ["decoder-3", "decoder", 3, 4, false],
      ["head-0", "head", 0, 1600, false],
    ]);
  });

  it("a streamed answer has the unsplit model's ids and logprobs", async () => {
    await expectUnsplitStream(server.url);
  });

  it(`answers all ${CASES.length} eval prompts exactly as the unsplit model (greedy, 24 new tokens)`, async () => {
    const ids = new Map<string, string>();
    for (const name of new Set(CASES.map((c) => c.image))) {
      ids.set(name, (await (await fetch(`${server.url}/v1/images`, { method: "POST", headers: { "content-type": "image/png" }, body: evalImage(name) })).json<any>()).image_id);
    }
    const mismatches: string[] = [];
    const queue = [...CASES];
    const lane = async (n: number) => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        const body = await (await postJson(server.url, "/v1/generate", { image_id: ids.get(c.image), prompt: c.prefix, max_tokens: 24, stream: false, session: `eval-${n}` })).json<any>();
        if (body.text !== c.answer || JSON.stringify(body.ids) !== JSON.stringify(c.answer_ids)) mismatches.push(`${c.image} "${c.prefix}": got ${JSON.stringify(body.text ?? body)} ${JSON.stringify(body.ids)}`);
      }
    };
    await Promise.all([0, 1, 2].map(lane));
    expect(mismatches).toEqual([]);
    const loaded = (await (await fetch(`${server.url}/v1/models`)).json<any>()).data[0].stages.map((s: any) => s.loaded);
    expect(loaded).toEqual(Array(7).fill(true));
  }, 600_000);
});

describe("a LoRA adapter through the stage workers", () => {
  it("eval prompts get the merged model's answers, interleaved with base requests that keep the base's", async () => {
    const models = await (await fetch(`${server.url}/v1/models`)).json<any>();
    expect(models.data.map((x: any) => [x.id, x.parent ?? null])).toEqual([[ID, null], [`${ID}:shapes-lora-a`, ID]]);
    let differ = 0;
    for (const [image, prefix] of EVAL_PROMPTS) {
      const body = (model: string | null, stream: boolean, i: number) => ({ image: Buffer.from(evalImage(image)).toString("base64"), prompt: prefix, max_tokens: 24, stream, session: `lora-${i}`, ...(model ? { model } : {}) });
      const texts = await Promise.all(
        [`${ID}:shapes-lora-a`, null, `${ID}:shapes-lora-a`, null].map(async (model, i) => {
          const res = await postJson(server.url, "/v1/generate", body(model, i % 3 === 0, i));
          return i % 3 === 0 ? JSON.parse((await readSse(res)).events.at(-1)!.data).text : (await res.json<any>()).text;
        }),
      );
      const want = merged.get(`${image}|${prefix}`)!;
      const base = CASES.find((c) => c.image === image && c.prefix === prefix)!.answer;
      expect(texts, `${image}: ${prefix}`).toEqual([want, base, want, base]);
      if (want !== base) differ++;
    }
    expect(differ, "the adapter changes some answers").toBeGreaterThan(0);
    // Each stage worker holds only its own stage's factors; the head none: 98,304 + 442,368 bytes in all.
    const stages = (await (await fetch(`${server.url}/v1/models`)).json<any>()).data[0].stages as any[];
    const bytes = (kind: string) => stages.filter((s) => s.kind === kind).reduce((n, s) => n + (s.adapters.find((a: any) => a.name === "shapes-lora-a")?.bytes ?? 0), 0);
    expect([bytes("vision"), bytes("decoder"), bytes("head")]).toEqual([98304, 442368, 0]);
  }, 300_000);
});

const restart = async (edit: (stage: string, toml: string) => string): Promise<void> => {
  await server.stop();
  for (const p of configs.stages) writeFileSync(p, edit(p, readFileSync(p, "utf8")));
  server = await startDevServer({ configs: [configs.decoder, configs.vision, ...configs.stages], vars: { RATE_LIMIT_RPM: "0" }, timeoutMs: 240_000 });
};

describe("a stage that lost a session's cache", () => {
  it("is rebuilt by replay: the session's next answer has the same ids and logprobs", async () => {
    // decoder-2 keeps one session's cache: a second session evicts the first one's there.
    await restart((p, t) => (p.endsWith("decoder-2.toml") ? t.replace('STAGE = "decoder-2"', 'STAGE = "decoder-2"\nMAX_SESSIONS = "1"') : t));
    const c = CASES.find((x) => x.image === "img_002_200x200.png" && x.prefix === "caption en")!;
    const { image_id } = await (await fetch(`${server.url}/v1/images`, { method: "POST", headers: { "content-type": "image/png" }, body: evalImage(c.image) })).json<any>();
    const ask = async (session: string) => (await postJson(server.url, "/v1/generate", { image_id, prompt: c.prefix, max_tokens: 24, stream: false, session })).json<any>();
    const first = await ask("a");
    expect(first.ids).toEqual([...c.answer_ids]);
    await ask("b"); // evicts a's cache at decoder-2
    const held = (await (await fetch(`${server.url}/v1/models`)).json<any>()).data[0].stages.map((s: any) => [s.name, s.sessions]);
    expect(held.filter((x: any) => x[0].startsWith("decoder"))).toEqual([["decoder-0", 2], ["decoder-1", 2], ["decoder-2", 1], ["decoder-3", 2]]);
    const again = await ask("a"); // a's prefill is cached in its session: its steps find decoder-2 without it
    expect(again.usage.prefix_cache.kv).toBe("hit");
    expect({ ids: again.ids, tokens: again.tokens }).toEqual({ ids: first.ids, tokens: first.tokens });
  }, 300_000);
});

describe("a stage that does not answer", () => {
  it("is a 503 with retry-after; the server stays healthy", async () => {
    await server.stop();
    // head-0's worker points at a model that is not there: every call it gets fails.
    const head = configs.stages.find((p) => p.endsWith("head-0.toml"))!;
    writeFileSync(head, readFileSync(head, "utf8").replace(`MODEL_ID = "${ID}"`, 'MODEL_ID = "no-such-model"'));
    server = await startDevServer({ configs: [configs.decoder, configs.vision, ...configs.stages], vars: { RATE_LIMIT_RPM: "0" }, timeoutMs: 240_000 });
    const { image_id } = await (await fetch(`${server.url}/v1/images`, { method: "POST", headers: { "content-type": "image/png" }, body: evalImage(CASES[0].image) })).json<any>();
    for (const stream of [true, false]) {
      const res = await postJson(server.url, "/v1/generate", { image_id, prompt: "caption en", max_tokens: 8, stream, session: "survivor" });
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("5");
      expect((await res.json<any>()).error).toMatchObject({ type: "unavailable", message: "stage head-0 of the model is unreachable; retry later" });
    }
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const models = await (await fetch(`${server.url}/v1/models`)).json<any>();
    expect(models.data[0].stages.find((s: any) => s.name === "head-0").loaded).toBe(false);
  }, 300_000);
});
