/**
 * Deploying a pipeline, checked offline: scripts/stage-configs.ts writes a config per stage of the shapes model
 * converted at --max-shard-mb 2 (7 stages, model files from R2 as a real deployment reads them) plus the decoder
 * and vision workers' configs, and `wrangler deploy --dry-run` bundles every one. A stage worker's bundle holds
 * the kernel module and no onnxruntime; the decoder's config binds every stage and raises its subrequest limit
 * above the call budget of a 512-token answer from PaliGemma-3B int4 and int8 planned at 100 MB per stage.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parse } from "smol-toml";
import { afterAll, describe, expect, it } from "vitest";
import { planByMemory } from "../../converter/plan-memory.ts";
import { convert } from "../../converter/convert.ts";
import { writeSyntheticModel } from "../../bench/memory/synthetic.ts";
import { benchShape } from "../../bench/shapes.ts";
import { stageBinding } from "../../shared/api/stage-rpc.ts";
import { DEFAULT_STAGE_BUDGET } from "../../shared/model/stage-memory.ts";
import { callBudget, DECODER_SUBREQUESTS } from "../../shared/pipeline/budget.ts";
import { writePipelineConfigs, stageWorkerName } from "../../scripts/stage-configs.ts";
import { REPO, SHAPES_MODEL } from "../helpers/golden.ts";
import { OFFLINE_ENV } from "../serving/support/dev-server.ts";

const work = mkdtempSync(join(tmpdir(), "pg-pipeline-deploy-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const run = promisify(execFile);

/** Bundles `config` with `wrangler deploy --dry-run`: the bundle's raw bytes and whether onnxruntime is in it. */
async function dryRun(config: string): Promise<{ raw: number; ort: boolean; kernel: boolean }> {
  const out = mkdtempSync(join(work, "dry-"));
  const wrangler = join(REPO, "node_modules/wrangler/bin/wrangler.js");
  await run(process.execPath, [wrangler, "deploy", "--dry-run", "--outdir", out, "-c", config], { cwd: REPO, env: { ...process.env, ...OFFLINE_ENV }, maxBuffer: 16 << 20 });
  const names = (readdirSync(out, { recursive: true }) as string[]).filter((n) => statSync(join(out, n)).isFile() && !n.endsWith(".map"));
  const raw = names.reduce((a, n) => a + statSync(join(out, n)).size, 0);
  return { raw, ort: names.some((n) => n.includes("ort-wasm")), kernel: names.some((n) => n.includes("paligemma-kernel")) };
}

describe("deploying a model as a pipeline", () => {
  it("writes a config per stage, and wrangler deploy --dry-run bundles every one", async () => {
    const manifest = await convert(SHAPES_MODEL, join(work, "models", "shapes-split"), { dtype: "fp32", maxShardMb: 2 });
    const configs = writePipelineConfigs(manifest, join(work, "deploy"), { source: "r2", bucket: "paligemma-models", modelId: "shapes-split" });
    expect(configs.stages.length).toBe(7);
    const decoder = parse(readFileSync(configs.decoder, "utf8")) as any;
    expect(decoder.limits).toEqual({ cpu_ms: 300000, subrequests: DECODER_SUBREQUESTS });
    expect(decoder.vars.MODEL_SOURCE).toBe("r2");
    expect(decoder.r2_buckets).toEqual([{ binding: "MODEL_BUCKET", bucket_name: "paligemma-models" }]);
    expect(decoder.services.slice(1)).toEqual(manifest.stages.map((s) => ({ binding: stageBinding(s.name), service: stageWorkerName("shapes-split", s.name) })));
    for (const [i, path] of configs.stages.entries()) {
      const c = parse(readFileSync(path, "utf8")) as any;
      expect(c.vars).toEqual({ MODEL_ID: "shapes-split", MODEL_SOURCE: "r2", STAGE: manifest.stages[i].name });
      expect(c.name).toBe(stageWorkerName("shapes-split", manifest.stages[i].name));
    }
    const bundles = [];
    for (const path of [configs.decoder, configs.vision, ...configs.stages]) bundles.push(await dryRun(path));
    const [d, v, ...stages] = bundles;
    expect(d.ort && v.ort).toBe(true); // the decoder and vision workers keep onnxruntime one var away
    for (const s of stages) {
      expect(s).toMatchObject({ ort: false, kernel: true });
      expect(s.raw).toBeLessThan(1.5e6); // the kernel builds and the code; no 11 MB onnxruntime WASM
    }
  }, 600_000);

  it("a model planned with room for adapters gives its vision and decoder stage workers that adapter cache", async () => {
    const manifest = await convert(SHAPES_MODEL, join(work, "models", "shapes-adapters"), { dtype: "fp32", maxStageMb: 60, stageBudget: { adapterBytes: 3.5e6 } });
    expect(manifest.budget?.adapterBytes).toBe(3.5e6);
    const configs = writePipelineConfigs(manifest, join(work, "deploy-adapters"), { source: "r2", modelId: "shapes-adapters" });
    const vars = configs.stages.map((p) => (parse(readFileSync(p, "utf8")) as any).vars);
    expect(vars.map((v) => [v.STAGE, v.ADAPTER_CACHE_MB ?? null])).toEqual(manifest.stages.map((s) => [s.name, s.kind === "head" ? null : "3"]));
  });

  it("the decoder's subrequest limit covers a 512-token answer from PaliGemma-3B planned at 100 MB", async () => {
    const config = benchShape("paligemma-3b", 1, 1).config;
    for (const dtype of ["int4", "int8"] as const) {
      const w = { dtype, blockSize: 32 } as const;
      const planned = planByMemory(config, w, { maxStageBytes: 100e6, budget: DEFAULT_STAGE_BUDGET });
      const named = planned.map((s, i) => ({ ...s, name: `s${i}` }));
      const m = await writeSyntheticModel(join(work, dtype), config, w, named, { ...DEFAULT_STAGE_BUDGET, maxStageBytes: 100e6 }, new Set(), () => {});
      const b = callBudget(m);
      expect(b.forTokens(512), dtype).toBeGreaterThan(10_000); // over the default: the raised limit is needed
      expect(b.forTokens(512), dtype).toBeLessThan(DECODER_SUBREQUESTS);
    }
  });
});
