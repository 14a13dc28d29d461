/**
 * Parallel parts in workerd: the shapes model with every decoder layer cut into 2 parallel parts (each holding the
 * layer's attention; 1 vision, 8 decoder, 1 head stage) served by `wrangler dev` with one stage Worker per stage.
 * The parts' replies cross Workers RPC (the second part's `partialOnly` reply: an empty `hidden`), so a streamed
 * answer keeps the eval's reference ids and the logprobs of the same model run in process (within 1e-5); GET
 * /v1/models lists every part loaded; ten eval prompts give the reference answers.
 */
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convert } from "../../converter/convert.ts";
import { generateAll } from "../../shared/generation/generate.ts";
import { preprocessImage } from "../../shared/image/preprocess.ts";
import { initKernelForNode } from "../../shared/kernel/node.ts";
import { vocabMask } from "../../shared/model/vocab.ts";
import { buildPromptIds } from "../../shared/text/prompt.ts";
import { PaliGemmaTokenizer } from "../../shared/text/tokenizer.ts";
import { writePipelineConfigs } from "../../scripts/stage-configs.ts";
import { SHAPES_MODEL } from "../helpers/golden.ts";
import { startDevServer, type DevServer } from "../serving/support/dev-server.ts";
import { evalImage } from "../serving/support/harness.ts";
import { readSse } from "../serving/support/sse-client.ts";
import { CASES, expectEvalAnswers, postJson } from "./e2e-support.ts";
import { pipelineAt } from "./support.ts";

const work = mkdtempSync(join(tmpdir(), "pg-parallel-e2e-"));
const ID = "shapes-parallel";
const dir = join(work, "models", ID);
let server: DevServer;

beforeAll(async () => {
  await initKernelForNode();
  const manifest = await convert(SHAPES_MODEL, dir, { dtype: "fp32", mlpParts: 2, parallelParts: true });
  const configs = writePipelineConfigs(manifest, join(work, "configs"), { source: "assets", modelsDir: join(work, "models"), modelId: ID });
  server = await startDevServer({ configs: [configs.decoder, configs.vision, ...configs.stages], vars: { RATE_LIMIT_RPM: "0" }, timeoutMs: 300_000 });
}, 360_000);
afterAll(async () => {
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe("a pipeline whose layers are cut into parallel parts, in workerd", () => {
  it("a streamed answer has the reference ids and the in-process pipeline's logprobs; every part was loaded", async () => {
    const c = CASES.find((x) => x.image === "img_001_160x120.png" && x.prefix === "caption en")!;
    const { image_id } = await (await fetch(`${server.url}/v1/images`, { method: "POST", headers: { "content-type": "image/png" }, body: evalImage(c.image) })).json<any>();
    const { events } = await readSse(await postJson(server.url, "/v1/generate", { image_id, prompt: c.prefix, max_tokens: 24 }));
    const tokens = events.filter((e) => e.event === "token").map((e) => JSON.parse(e.data));
    expect(tokens.map((t) => t.id)).toEqual([...c.answer_ids]);

    const p = await pipelineAt(dir);
    const tok = PaliGemmaTokenizer.fromJson(JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")));
    const soft = await p.engine.encodeImage(await preprocessImage(evalImage(c.image), p.manifest.preprocess, { maxPixels: 2 ** 21 }));
    const ids = buildPromptIds(tok, c.prefix, p.manifest.config.imageTokens, p.manifest.config.tokens);
    const ref = await generateAll(p.engine, soft, ids, { sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, maxTokens: 24, eos: [p.manifest.config.tokens.eos], mask: vocabMask(p.manifest), tokenizer: tok });
    expect(tokens.map((t) => t.id)).toEqual([...ref.ids]);
    expect(Math.max(...tokens.map((t, i) => Math.abs(t.logprob - ref.tokens[i].logprob)))).toBeLessThanOrEqual(1e-5);

    const stages = (await (await fetch(`${server.url}/v1/models`)).json<any>()).data[0].stages;
    const parts = stages.filter((s: any) => s.kind === "decoder");
    expect(parts.map((s: any) => [s.name, s.loaded])).toEqual([0, 1, 2, 3].flatMap((l) => [[`decoder-l${l}.0`, true], [`decoder-l${l}.1`, true]]));
  }, 300_000);

  it("ten eval prompts give the reference answers (greedy, 24 new tokens)", async () => {
    await expectEvalAnswers(server.url, CASES.slice(0, 10));
  }, 300_000);
});
