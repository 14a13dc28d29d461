/**
 * The spread prefill and vision tower in workerd: the shapes model at --max-shard-mb 2 (2 vision, 4 decoder, 1
 * head stage) served by `wrangler dev` with a second replica Worker of every vision and decoder stage (bound as
 * `STAGE_<NAME>_R1` in the decoder and vision workers, scripts/replica-configs.ts). Answers keep the eval's reference ids, a streamed one
 * the unsplit model's logprobs (within 1e-5), and GET /v1/models shows every replica loaded: it was called.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convert } from "../../converter/convert.ts";
import { writeReplicaConfigs } from "../../scripts/replica-configs.ts";
import { writePipelineConfigs } from "../../scripts/stage-configs.ts";
import { SHAPES_MODEL } from "../helpers/golden.ts";
import { startDevServer, type DevServer } from "../serving/support/dev-server.ts";
import { CASES, expectEvalAnswers, expectUnsplitStream, postJson } from "./e2e-support.ts";

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

describe("a pipeline with 2 replicas of every vision and decoder stage", () => {
  it("a streamed answer has the unsplit model's ids and logprobs; every replica was called", async () => {
    await expectUnsplitStream(server.url);
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
    await expectEvalAnswers(server.url, CASES.slice(0, 10));
  }, 300_000);
});
