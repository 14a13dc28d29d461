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
 *
 * Then the parallel-parts plan (every part of a cut layer holds the attention: one hop per layer): the part and
 * head-shard counts with the best modelled per-session latency at 3 ms hops (from the stages above, scaled by
 * weight bytes; bench/pipeline/plans.ts) whose 512-token answer stays within the decoder's 50,000 subrequests
 * are chosen, its largest parallel part and head shard are timed the same way, and that plan is modelled from
 * them (its vision stages are the sequential plan's); so is the fastest plan of all when it needs more calls.
 */
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { StageTimingReply, StageTimingRequest } from "../../kernels/bench-worker/stage-timing.ts";
import { createRng } from "../../shared/generation/rng.ts";
import { sample } from "../../shared/generation/sampler.ts";
import { DEFAULT_STAGE_BUDGET } from "../../shared/model/stage-memory.ts";
import { fileServer, inFreshWorker, post } from "../memory/run.ts";
import { writeSyntheticModel } from "../memory/synthetic.ts";
import { benchShape } from "../shapes.ts";
import { simulatedPoint } from "./simulate.ts";
import { firstTokenBudget, firstTokenMs, pipelinePoint, tokenHops, type FirstTokenBudget, type PipelineCosts, type PipelinePoint } from "./model.ts";
import { callsOf, costsOf, namedPlan, parallelCandidates, timedRoles, type NamedStage, type Role, type TimedStage } from "./plans.ts";

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
  /** "sequential" (today's cut: attention part, then the others) or "parallel" (every part holds the attention). */
  readonly plan: "sequential" | "parallel";
  readonly stages: number;
  /** Parts per cut decoder layer (1: whole layers) and head shards. */
  readonly parts_per_layer: number;
  readonly head_shards: number;
  readonly hops_per_token: number;
  /** Stage calls per token and for a 512-token answer (shared/pipeline/budget.ts; the decoder allows 50,000). */
  readonly calls_per_token: number;
  readonly calls_512_tokens: number;
  readonly timed: readonly TimedStage[];
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
      /** Times the stages of `stages` standing for `roles` (each in a fresh workerd), in a model written under `dir`. */
      const timeRoles = async (label: string, stages: NamedStage[], roles?: readonly Role[]): Promise<Map<Role, TimedStage>> => {
        const reps = timedRoles(stages, roles);
        o.log(`pipeline: ${dtype} ${label}: ${stages.length} stages at 100 MB; timing ${[...reps.values()].map((s) => s.name).join(", ")}`);
        const dir = join(work, `${dtype}-${label}`);
        await writeSyntheticModel(dir, config, weights, stages, { ...DEFAULT_STAGE_BUDGET, maxStageBytes: 100e6 }, new Set([...reps.values()].map((s) => s.name)), o.log);
        const timed = new Map<Role, TimedStage>();
        for (const [r, s] of reps) {
          const req: StageTimingRequest = { modelUrl: `${base}/${dtype}-${label}/`, stage: s.name, rows: o.rows, batches, reps: o.reps, spread: PIPELINE_REPLICAS.filter((r) => r > 1) };
          const t = (await inFreshWorker((url) => post<StageTimingReply>(new URL("/stage-timing", url), req))).result;
          o.log(`  ${s.name} (${r}): load ${Math.round(t.loadMs)} ms, prefill ${t.prefillMs.toFixed(1)} ms, steps ${batches.map((b) => `${b}: ${t.stepMs[b]?.toFixed(2) ?? "-"}`).join(", ")} ms, one replica's share ${Object.entries(t.spreadMs ?? {}).map(([r, ms]) => `r = ${r}: ${ms.toFixed(1)}`).join(", ")} ms`);
          timed.set(r, { ...t, name: s.name, weightBytes: s.estimate.weightBytes });
        }
        rmSync(dir, { recursive: true, force: true });
        return timed;
      };
      const sequential = namedPlan(config, weights);
      const timedSeq = await timeRoles("sequential", sequential);
      plans.push(planReport(dtype, "sequential", sequential, costsOf(sequential, timedSeq, coord), [...timedSeq.values()], coord, hopLocal, batches));

      const { all, chosen, fastest } = parallelCandidates(config, weights, timedSeq, coord, 3);
      for (const c of all) o.log(`  parallel candidate: ${c.parts} parts, ${c.headShards} head shards: ${c.stages.length} stages, ${(1000 / c.tokenMs).toFixed(2)} tokens/s modelled at 3 ms (scaled), ${c.calls.perToken} calls per token, ${c.calls.forAnswer} for 512 tokens`);
      // The fastest within the decoder's subrequests for a 512-token answer; and the fastest of all when that differs.
      for (const c of fastest === chosen ? [chosen] : [chosen, fastest]) {
        o.log(`  timing: ${c.parts} parts per layer, ${c.headShards} head shards`);
        const timedPar = await timeRoles(`parallel-${c.parts}x${c.headShards}`, [...c.stages], ["parallel", "head"]);
        const merged = new Map<Role, TimedStage>([["vision", timedSeq.get("vision")!], ...timedPar]);
        plans.push(planReport(dtype, "parallel", [...c.stages], costsOf(c.stages, merged, coord), [...timedPar.values()], coord, hopLocal, batches));
      }
    }
    return { hop_ms_measured_local: hopLocal, plans };
  } finally {
    files.close();
    if (!o.workDir) rmSync(work, { recursive: true, force: true });
  }
}

/** A plan's report: its modelled points at every hop, session count and replica count, and its first-token budgets. */
function planReport(dtype: "int4" | "int8", plan: PipelinePlanReport["plan"], stages: readonly NamedStage[], costs: PipelineCosts, timed: readonly TimedStage[], coord: number, hopLocal: number, batches: readonly number[]): PipelinePlanReport {
  const hops = [hopLocal, ...PIPELINE_HOPS];
  const points = hops.flatMap((h) => batches.flatMap((n) => PIPELINE_REPLICAS.map((r) => simulatedPoint(costs, h, n, r))));
  const lockstep = hops.flatMap((h) => batches.map((n) => pipelinePoint(costs, h, n)));
  const budgets = PIPELINE_HOPS.flatMap((h) => PIPELINE_REPLICAS.map((r) => ({ hop_ms: h, replicas: r, ...firstTokenBudget(costs, h, r), ttft_s: Math.round(firstTokenMs(costs, h, r)) / 1000 })));
  const calls = callsOf(stages);
  const parts = Math.max(1, stages.filter((s) => s.kind === "decoder" && s.mlp !== undefined && s.from === 0).length);
  return {
    dtype,
    plan,
    stages: stages.length,
    parts_per_layer: parts,
    head_shards: stages.filter((s) => s.kind === "head").length,
    hops_per_token: tokenHops(costs).length,
    calls_per_token: calls.perToken,
    calls_512_tokens: calls.forAnswer,
    timed,
    coordinator_ms: coord,
    points,
    lockstep,
    budgets,
  };
}
