/**
 * The pipeline bench's plans (bench/pipeline/run.ts): PaliGemma-3B planned at 100 MB per stage by the converter's
 * planner, stages named as the converter names them, each stage's cost taken from the timed stage of its role
 * scaled by weight bytes, and the parallel-parts plan chosen among candidate part and head-shard counts.
 *
 * Roles: "vision", "attention" (whole layers, or the first part of a sequential cut), "mlp" (the other parts of a
 * sequential cut), "parallel" (a part of a parallel cut: the layer's attention and an MLP slice), "head".
 */
import { planByMemory, type MemoryPlanOptions } from "../../converter/plan-memory.ts";
import type { PlannedStage } from "../../converter/plan.ts";
import type { StageTimingReply } from "../../kernels/bench-worker/stage-timing.ts";
import type { ModelConfig } from "../../shared/model/config.ts";
import type { Manifest, ManifestStage } from "../../shared/model/manifest.ts";
import { DEFAULT_STAGE_BUDGET, estimateStage, type StageEstimate, type StageWeights } from "../../shared/model/stage-memory.ts";
import { callBudget, DECODER_SUBREQUESTS } from "../../shared/pipeline/budget.ts";
import { decoderGroups } from "../../shared/pipeline/groups.ts";
import { tokenLatencyMs, type PipelineCosts, type StageCost } from "./model.ts";

/** A planned stage with its converter name and estimate. */
export type NamedStage = PlannedStage & { readonly name: string; readonly estimate: StageEstimate };

export type Role = "vision" | "attention" | "mlp" | "parallel" | "head";

/** A timed stage: what the stage-timing worker measured, and the stage's weight bytes. */
export type TimedStage = StageTimingReply & { readonly name: string; readonly weightBytes: number };

/** Part counts per cut layer and head shard counts the parallel plan is chosen among (0: as few as fit). */
export const PARALLEL_PARTS = [2, 3, 4, 5, 6, 8] as const;
export const HEAD_SHARDS = [0, 8, 10, 12, 16] as const;
/** The answer length whose call budget a chosen plan must keep under the decoder's subrequests. */
export const BUDGET_TOKENS = 512;

/** The plan at 100 MB per stage, with `o`'s cut options, named as the converter names its stages. */
export function namedPlan(c: ModelConfig, w: StageWeights, o: Partial<MemoryPlanOptions> = {}): NamedStage[] {
  const planned = planByMemory(c, w, { maxStageBytes: 100e6, budget: DEFAULT_STAGE_BUDGET, ...o });
  const counters = { vision: 0, decoder: 0, head: 0 };
  const parts = new Map<number, number>();
  return planned.map((s) => {
    const part = s.mlp !== undefined || s.attention === false;
    const p = parts.get(s.from) ?? 0;
    if (part) parts.set(s.from, p + 1);
    const name = part ? `decoder-l${s.from}.${p}` : `${s.kind}-${counters[s.kind]++}`;
    return { ...s, name, estimate: estimateStage(c, w, s, DEFAULT_STAGE_BUDGET) };
  });
}

export function roleOf(s: NamedStage): Role {
  if (s.kind !== "decoder") return s.kind;
  return s.cut === "parallel" ? "parallel" : s.attention === false ? "mlp" : "attention";
}

/** The stage of each role with the most weight bytes (the one timed). */
export function timedRoles(stages: readonly NamedStage[], roles?: readonly Role[]): Map<Role, NamedStage> {
  const reps = new Map<Role, NamedStage>();
  for (const s of stages) {
    const r = roleOf(s);
    if (roles && !roles.includes(r)) continue;
    if (!reps.has(r) || reps.get(r)!.estimate.weightBytes < s.estimate.weightBytes) reps.set(r, s);
  }
  return reps;
}

/** The stages as manifest stages (for groups and the call budget). */
function asManifest(stages: readonly NamedStage[]): ManifestStage[] {
  return stages.map((s) => ({ ...s, weights: `${s.name}.bin` }) as unknown as ManifestStage);
}

/**
 * Every stage's cost: its role's timed stage scaled by weight bytes; a role not timed yet takes `fallback`'s
 * (a parallel part the attention part's, before it is timed itself).
 */
export function costsOf(stages: readonly NamedStage[], timed: ReadonlyMap<Role, TimedStage>, coordinatorMs: number, fallback: Partial<Record<Role, Role>> = { parallel: "attention" }): PipelineCosts {
  const byName = new Map(stages.map((s) => [s.name, s]));
  const cost = (s: NamedStage): StageCost => {
    const t = timed.get(roleOf(s)) ?? timed.get(fallback[roleOf(s)]!);
    if (!t) throw new Error(`no timed stage for ${s.name}'s role ${roleOf(s)}`);
    const k = s.estimate.weightBytes / t.weightBytes;
    const stepMs = Object.fromEntries(Object.entries(t.stepMs).map(([b, ms]) => [b, ms * k]));
    const spreadMs = Object.fromEntries(Object.entries(t.spreadMs ?? {}).map(([r, ms]) => [r, ms * k]));
    return { name: s.name, kind: s.kind, prefillMs: t.prefillMs * k, stepMs, spreadMs, attentionLayers: s.kind === "head" || s.attention === false ? 0 : s.to - s.from, ...(t.stepBatch ? { maxBatch: t.stepBatch } : {}) };
  };
  const dec = asManifest(stages.filter((s) => s.kind === "decoder"));
  return {
    vision: stages.filter((s) => s.kind === "vision").map(cost),
    decoder: decoderGroups(dec).map((g) => ({ first: cost(byName.get(g.first.name)!), rest: g.rest.map((r) => cost(byName.get(r.name)!)), parallel: g.parallel })),
    head: stages.filter((s) => s.kind === "head").map(cost),
    coordinatorMs,
  };
}

/** Stage calls per token and for a {@link BUDGET_TOKENS}-token answer (shared/pipeline/budget.ts). */
export function callsOf(stages: readonly NamedStage[]): { perToken: number; forAnswer: number } {
  const b = callBudget({ stages: asManifest(stages) } as unknown as Manifest);
  return { perToken: b.perToken, forAnswer: b.forTokens(BUDGET_TOKENS) };
}

/** One candidate parallel plan, modelled from the timed stages (scaled). */
export interface ParallelCandidate {
  readonly parts: number;
  readonly headShards: number;
  readonly stages: readonly NamedStage[];
  /** Modelled ms per token for one session at the chosen hop. */
  readonly tokenMs: number;
  readonly calls: { readonly perToken: number; readonly forAnswer: number };
}

/**
 * Every candidate parallel plan (parts × head shards that plan at 100 MB), modelled at `hop` ms for one session;
 * the chosen one is the fastest whose {@link BUDGET_TOKENS}-token answer stays within the decoder's subrequests,
 * `fastest` the fastest of all (more calls per token than a long answer may make under that limit, perhaps).
 */
export function parallelCandidates(c: ModelConfig, w: StageWeights, timed: ReadonlyMap<Role, TimedStage>, coordinatorMs: number, hop: number): { all: ParallelCandidate[]; chosen: ParallelCandidate; fastest: ParallelCandidate } {
  const all: ParallelCandidate[] = [];
  const seen = new Set<string>();
  for (const parts of PARALLEL_PARTS) {
    for (const shards of HEAD_SHARDS) {
      let stages: NamedStage[];
      try {
        stages = namedPlan(c, w, { parallelParts: true, minMlpParts: parts, ...(shards ? { headShards: shards } : {}) });
      } catch {
        continue; // a part or shard count that does not fit
      }
      const dec = stages.filter((s) => s.kind === "decoder" && s.from === 0).length;
      if (dec !== parts) continue; // the budget needs more parts than asked: another candidate covers it
      const headShards = stages.filter((s) => s.kind === "head").length;
      if (seen.has(`${parts}:${headShards}`)) continue; // the default head already had that many shards
      seen.add(`${parts}:${headShards}`);
      const tokenMs = tokenLatencyMs(costsOf(stages, timed, coordinatorMs), hop, 1);
      all.push({ parts, headShards, stages, tokenMs, calls: callsOf(stages) });
    }
  }
  const byLatency = [...all].sort((a, b) => a.tokenMs - b.tokenMs);
  if (!byLatency.length) throw new Error("no parallel plan fits 100 MB per stage");
  const chosen = byLatency.find((x) => x.calls.forAnswer <= DECODER_SUBREQUESTS) ?? byLatency[0];
  return { all, chosen, fastest: byLatency[0] };
}
