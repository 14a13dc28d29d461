/**
 * `npm run -s bench -- --pipeline [--json]`: PaliGemma-3B served as a pipeline, modelled from measurements. The
 * model (synthetic weights, real shapes) is planned at 100 MB per stage for int4 and int8 by the converter's
 * planner; one stage of each role (the largest vision stage, decoder stage holding attention, MLP-only part and
 * head shard) is timed alone in its own workerd process with the stage worker's code (kernels/bench-worker
 * /stage-timing: a 270-row prefill, decode steps batched over 1, 4 and 16 sessions, head logits of 1–16 rows);
 * the stages not timed take the time of their role's timed one scaled by their weight bytes (decode and prefill
 * are memory- and compute-bound over the weights; Gemma-2B's layers all have the same shape, so within a role
 * the scale is 1 except at the vision tower's ends and a smaller last head shard). The local hop (a Workers RPC
 * round trip over a service binding, one row out and back) is measured in workerd, the coordinator's sampling
 * over 257,216 logits in this process; bench/pipeline/model.ts turns that into tokens/s and time to first token
 * at hops of 1.5, 3 and 10 ms (and the measured one).
 */
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { planByMemory } from "../../converter/plan-memory.ts";
import type { StageTimingReply, StageTimingRequest } from "../../kernels/bench-worker/stage-timing.ts";
import { createRng } from "../../shared/generation/rng.ts";
import { sample } from "../../shared/generation/sampler.ts";
import { decoderGroups } from "../../shared/pipeline/groups.ts";
import { DEFAULT_STAGE_BUDGET, estimateStage } from "../../shared/model/stage-memory.ts";
import type { ManifestStage } from "../../shared/model/manifest.ts";
import { fileServer, inFreshWorker, post } from "../memory/run.ts";
import { writeSyntheticModel } from "../memory/synthetic.ts";
import { benchShape } from "../shapes.ts";
import { simulatedPoint } from "./simulate.ts";
import { firstTokenBudget, firstTokenMs, pipelinePoint, tokenHops, type FirstTokenBudget, type PipelineCosts, type PipelinePoint, type StageCost } from "./model.ts";

export const PIPELINE_HOPS = [1.5, 3, 10] as const;
export const PIPELINE_SESSIONS = [1, 4, 16] as const;
/** Replicas of every decoder stage the time to first token is modelled for. */
export const PIPELINE_REPLICAS = [1, 2, 4, 8] as const;

export interface PipelineBenchOptions {
  readonly dtypes: readonly ("int4" | "int8")[];
  readonly rows: number;
  readonly reps: number;
  readonly workDir?: string;
  readonly log: (line: string) => void;
  /** Batch sizes timed and modelled (default {@link PIPELINE_SESSIONS}; a reduced run: [1]). */
  readonly sessions?: readonly number[];
}

/** One plan's measurements and modelled points. */
export interface PipelinePlanReport {
  readonly dtype: "int4" | "int8";
  readonly stages: number;
  readonly hops_per_token: number;
  readonly timed: readonly (StageTimingReply & { name: string; weightBytes: number })[];
  readonly coordinator_ms: number;
  /** Per hop, session count and replica count: time to first token, and tokens/s simulated (simulate.ts). */
  readonly points: readonly PipelinePoint[];
  /** Per hop and session count (one replica): the sessions in lockstep, every stage stepping all of them together. */
  readonly lockstep: readonly PipelinePoint[];
  /** The time to first token by part, per injected hop and replica count. */
  readonly budgets: readonly (FirstTokenBudget & { hop_ms: number; replicas: number; ttft_s: number })[];
}

export interface PipelineReport {
  readonly hop_ms_measured_local: number;
  readonly plans: readonly PipelinePlanReport[];
}

/** Median ms of the coordinator's per-token work: sampling (greedy, logprob) over a full vocabulary. */
function coordinatorMs(vocab: number): number {
  const logits = new Float32Array(vocab);
  for (let i = 0; i < vocab; i++) logits[i] = Math.sin(i * 0.61) * 8;
  const ms: number[] = [];
  for (let r = 0; r < 11; r++) {
    const t0 = performance.now();
    sample(logits, { temperature: 0, topK: 0, topP: 1 }, { validTokens: vocab, banned: [] }, createRng(1));
    ms.push(performance.now() - t0);
  }
  return ms.sort((a, b) => a - b)[5];
}

export async function pipelineBench(o: PipelineBenchOptions): Promise<PipelineReport> {
  const config = benchShape("paligemma-3b", 1, 1).config;
  const work = o.workDir ?? mkdtempSync(join(tmpdir(), "pg-pipeline-bench-"));
  const files = await fileServer(work);
  const base = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
  const batches = [...(o.sessions ?? PIPELINE_SESSIONS)];
  try {
    const hop = await inFreshWorker((url) => post<{ ms: number }>(new URL("/hop", url), { floats: config.text.hidden, reps: 200 }));
    const hopLocal = Math.round(hop.result.ms * 1000) / 1000;
    o.log(`pipeline: local hop (RPC over a service binding, f32[${config.text.hidden}] each way): ${hopLocal} ms`);
    const coord = Math.round(coordinatorMs(config.text.vocab) * 100) / 100;
    o.log(`pipeline: coordinator sampling over ${config.text.vocab} logits: ${coord} ms`);
    const plans: PipelinePlanReport[] = [];
    for (const dtype of o.dtypes) {
      const weights = { dtype, blockSize: 32 } as const;
      const budget = { ...DEFAULT_STAGE_BUDGET, maxStageBytes: 100e6 };
      const planned = planByMemory(config, weights, { maxStageBytes: budget.maxStageBytes, budget: DEFAULT_STAGE_BUDGET });
      const counters = { vision: 0, decoder: 0, head: 0 };
      const parts = new Map<number, number>();
      const stages = planned.map((s) => {
        const part = s.mlp !== undefined || s.attention === false;
        const p = parts.get(s.from) ?? 0;
        if (part) parts.set(s.from, p + 1);
        const name = part ? `decoder-l${s.from}.${p}` : `${s.kind}-${counters[s.kind]++}`;
        return { ...s, name, estimate: estimateStage(config, weights, s, DEFAULT_STAGE_BUDGET) };
      });
      const role = (s: (typeof stages)[number]) => (s.kind === "decoder" ? (s.attention === false ? "mlp" : "attention") : s.kind);
      const reps = new Map<string, (typeof stages)[number]>();
      for (const s of stages) if (!reps.has(role(s)) || reps.get(role(s))!.estimate.weightBytes < s.estimate.weightBytes) reps.set(role(s), s);
      o.log(`pipeline: ${dtype}: ${stages.length} stages at 100 MB; timing ${[...reps.values()].map((s) => s.name).join(", ")}`);
      const dir = join(work, dtype);
      await writeSyntheticModel(dir, config, weights, stages, budget, new Set([...reps.values()].map((s) => s.name)), o.log);
      const timed = new Map<string, StageTimingReply & { name: string; weightBytes: number }>();
      for (const [r, s] of reps) {
        const req: StageTimingRequest = { modelUrl: `${base}/${dtype}/`, stage: s.name, rows: o.rows, batches, reps: o.reps, spread: PIPELINE_REPLICAS.filter((r) => r > 1) };
        const t = (await inFreshWorker((url) => post<StageTimingReply>(new URL("/stage-timing", url), req))).result;
        o.log(`  ${s.name}: load ${Math.round(t.loadMs)} ms, prefill ${t.prefillMs.toFixed(1)} ms, steps ${batches.map((b) => `${b}: ${t.stepMs[b]?.toFixed(2) ?? "-"}`).join(", ")} ms, one replica's share ${Object.entries(t.spreadMs ?? {}).map(([r, ms]) => `r = ${r}: ${ms.toFixed(1)}`).join(", ")} ms`);
        timed.set(r, { ...t, name: s.name, weightBytes: s.estimate.weightBytes });
      }
      const cost = (s: (typeof stages)[number]): StageCost => {
        const t = timed.get(role(s))!;
        const k = s.estimate.weightBytes / t.weightBytes;
        const stepMs = Object.fromEntries(Object.entries(t.stepMs).map(([b, ms]) => [b, ms * k]));
        const spreadMs = Object.fromEntries(Object.entries(t.spreadMs ?? {}).map(([r, ms]) => [r, ms * k]));
        return { name: s.name, kind: s.kind, prefillMs: t.prefillMs * k, stepMs, spreadMs, attentionLayers: s.kind === "head" || s.attention === false ? 0 : s.to - s.from, ...(t.stepBatch ? { maxBatch: t.stepBatch } : {}) };
      };
      const byName = new Map(stages.map((s) => [s.name, s]));
      const asManifest = stages.map((s) => ({ ...s, weights: `${s.name}.bin` }) as unknown as ManifestStage);
      const costs: PipelineCosts = {
        vision: stages.filter((s) => s.kind === "vision").map(cost),
        decoder: decoderGroups(asManifest.filter((s) => s.kind === "decoder")).map((g) => ({ first: cost(byName.get(g.first.name)!), rest: g.rest.map((r) => cost(byName.get(r.name)!)) })),
        head: stages.filter((s) => s.kind === "head").map(cost),
        coordinatorMs: coord,
      };
      const hops = [hopLocal, ...PIPELINE_HOPS];
      const points = hops.flatMap((h) => batches.flatMap((n) => PIPELINE_REPLICAS.map((r) => simulatedPoint(costs, h, n, r))));
      const lockstep = hops.flatMap((h) => batches.map((n) => pipelinePoint(costs, h, n)));
      const budgets = PIPELINE_HOPS.flatMap((h) => PIPELINE_REPLICAS.map((r) => ({ hop_ms: h, replicas: r, ...firstTokenBudget(costs, h, r), ttft_s: Math.round(firstTokenMs(costs, h, r)) / 1000 })));
      plans.push({ dtype, stages: stages.length, hops_per_token: tokenHops(costs).length, timed: [...timed.values()], coordinator_ms: coord, points, lockstep, budgets });
      rmSync(dir, { recursive: true, force: true });
    }
    return { hop_ms_measured_local: hopLocal, plans };
  } finally {
    files.close();
    if (!o.workDir) rmSync(work, { recursive: true, force: true });
  }
}
