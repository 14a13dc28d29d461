/**
 * The spread prefill and vision tower in workerd: the shapes model at --max-shard-mb 2 (2 vision, 4 decoder, 1
 * head stage) served by `wrangler dev` with a second replica Worker of every vision and decoder stage (bound as
 * `STAGE_<NAME>_R1` in the decoder and vision workers, scripts/replica-configs.ts). Answers keep the eval's reference ids, a streamed one
 * the unsplit model's logprobs (within 1e-5), and GET /v1/models shows every replica loaded: it was called.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convert } from "../../converter/convert.ts";
import { loadModel } from "../../cli/node-runtime.ts";
import { preprocessImage } from "../../shared/image/preprocess.ts";
import { generateAll } from "../../shared/generation/generate.ts";
import { vocabMask } from "../../shared/model/vocab.ts";
import { buildPromptIds } from "../../shared/text/prompt.ts";
import { PaliGemmaTokenizer } from "../../shared/text/tokenizer.ts";
import { writeReplicaConfigs } from "../../scripts/replica-configs.ts";
import { writePipelineConfigs } from "../../scripts/stage-configs.ts";
import { REPO, SHAPES_MODEL } from "../helpers/golden.ts";
import { startDevServer, type DevServer } from "../serving/support/dev-server.ts";
import { evalImage } from "../serving/support/harness.ts";
import { readSse } from "../serving/support/sse-client.ts";

interface EvalCase {
  readonly image: string;
  readonly prefix: string;
  readonly answer: string;
  readonly answer_ids: readonly number[];
}
const CASES: EvalCase[] = JSON.parse(readFileSync(join(SHAPES_MODEL, "eval/cases.json"), "utf8")).cases;
const work = mkdtempSync(join(tmpdir(), "pg-spread-e2e-"));
const ID = "shapes-spread";
let server: DevServer;

beforeAll(async () => {
  const manifest = await convert(SHAPES_MODEL, join(work, "models", ID), { dtype: "fp32", maxShardMb: 2 });
  const configs = writePipelineConfigs(manifest, join(work, "configs"), { source: "assets", modelsDir: join(work, "models"), modelId: ID });
  const replicas = writeReplicaConfigs(manifest, configs, 2); // a second Worker of every vision and decoder stage
  server = await startDevServer({ configs: [configs.decoder, configs.vision, ...configs.stages, ...replicas], vars: { RATE_LIMIT_RPM: "0" }, timeoutMs: 300_000 });
}, 360_000);
afterAll(async () => {
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

const postJson = (url: string, path: string, body: unknown) =>
  fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

describe("a pipeline with 2 replicas of every vision and decoder stage", () => {
  it("a streamed answer has the unsplit model's ids and logprobs; every replica was called", async () => {
    const c = CASES.find((x) => x.image === "img_001_160x120.png" && x.prefix === "caption en")!;
    const { image_id } = await (await fetch(`${server.url}/v1/images`, { method: "POST", headers: { "content-type": "image/png" }, body: evalImage(c.image) })).json<any>();
    const { events } = await readSse(await postJson(server.url, "/v1/generate", { image_id, prompt: c.prefix, max_tokens: 24 }));
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
    const stages = (await (await fetch(`${server.url}/v1/models`)).json<any>()).data[0].stages;
    expect(stages.map((s: any) => [s.name, s.loaded, (s.replicas ?? []).map((r: any) => [r.worker, r.loaded])])).toEqual([
      ["vision-0", true, [["STAGE_VISION_0_R1", true]]],
      ["vision-1", true, [["STAGE_VISION_1_R1", true]]],
      ["decoder-0", true, [["STAGE_DECODER_0_R1", true]]],
      ["decoder-1", true, [["STAGE_DECODER_1_R1", true]]],
      ["decoder-2", true, [["STAGE_DECODER_2_R1", true]]],
      ["decoder-3", true, [["STAGE_DECODER_3_R1", true]]],
      ["head-0", true, []],
    ]);
  }, 300_000);

  it("ten eval prompts give the reference answers (greedy, 24 new tokens)", async () => {
    const mismatches: string[] = [];
    for (const c of CASES.slice(0, 10)) {
      const { image_id } = await (await fetch(`${server.url}/v1/images`, { method: "POST", headers: { "content-type": "image/png" }, body: evalImage(c.image) })).json<any>();
      const body = await (await postJson(server.url, "/v1/generate", { image_id, prompt: c.prefix, max_tokens: 24, stream: false })).json<any>();
      if (body.text !== c.answer || JSON.stringify(body.ids) !== JSON.stringify(c.answer_ids)) mismatches.push(`${c.image} "${c.prefix}": got ${JSON.stringify(body.text ?? body)}`);
    }
    expect(mismatches).toEqual([]);
  }, 300_000);
});
