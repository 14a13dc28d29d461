/**
 * The pipeline bench's model (bench/pipeline/model.ts) on hand-made costs, and its JSON contract: the formulas
 * give these exact numbers, and the last line carries exactly the fields.
 */
import { describe, expect, it } from "vitest";
import { firstTokenBudget, firstTokenMs, pipelinePoint, tokenHops, tokenLatencyMs, type PipelineCosts, type StageCost } from "../../bench/pipeline/model.ts";
import { simulateSessions } from "../../bench/pipeline/simulate.ts";
import { pipelineJson } from "../../bench/pipeline/report.ts";

const stage = (name: string, kind: StageCost["kind"], prefillMs: number, one: number, sixteen: number): StageCost => ({ name, kind, prefillMs, stepMs: { 1: one, 4: one * 2, 16: sixteen } });
// Two layers, each cut in two parts (attention part 1 ms, MLP part 2 ms per step), two head shards, two vision stages.
const costs: PipelineCosts = {
  vision: [stage("vision-0", "vision", 50, 0, 0), stage("vision-1", "vision", 40, 0, 0)],
  decoder: [0, 1].map((l) => ({ first: stage(`decoder-l${l}.0`, "decoder", 20, 1, 4), rest: [stage(`decoder-l${l}.1`, "decoder", 30, 2, 8)] })),
  head: [stage("head-0", "head", 0, 3, 6), stage("head-1", "head", 0, 2.5, 7)],
  coordinatorMs: 1,
};

describe("the pipeline bench's model", () => {
  it("per-token latency: every hop, the parts of a layer after its attention part, the slowest head shard, the coordinator", () => {
    // 2 layers × (h + 1 + h + 2) + h + 3 + 1 at h = 3 → 2 × 9 + 3 + 3 + 1 = 25 ms
    expect(tokenLatencyMs(costs, 3, 1)).toBe(25);
    // 16 sessions: 2 × (3 + 4 + 3 + 8) + 3 + 7 + 1 = 47 ms
    expect(tokenLatencyMs(costs, 3, 16)).toBe(47);
  });

  it("time to first token: vision, the embeddings' hop, every prefill, the head; queued prompts wait at the slowest stage", () => {
    // (3 + 50) + (3 + 40) + 3 + 2 × (3 + 20 + 3 + 30) + 3 + 3 + 1 = 218 ms
    expect(firstTokenMs(costs, 3)).toBe(218);
    expect(pipelinePoint(costs, 3, 1)).toEqual({ hop_ms: 3, sessions: 1, replicas: 1, tokens_per_s_per_session: 40, aggregate_tokens_per_s: 40, ttft_s: 0.218 });
    // 16 sessions: 1000 / 47 per session, 16 000 / 47 in all; TTFT + 15 × 50 ms (vision-0, the slowest prefill)
    expect(pipelinePoint(costs, 3, 16)).toEqual({ hop_ms: 3, sessions: 16, replicas: 1, tokens_per_s_per_session: 21.28, aggregate_tokens_per_s: 340.43, ttft_s: 0.968 });
  });

  it("spread over r replicas: a stage of k attention layers k + 1 hops and 1/r of its compute, MLP parts one hop and 1/r", () => {
    // r = 2: hops 2 × 2 vision + 1 embed + 2 × (2 + 1) + 1 head = 12; vision 90 / 2; prefill 2 × (10 + 15) = 50
    expect(firstTokenBudget(costs, 3, 2)).toEqual({ vision_ms: 45, prefill_ms: 50, head_ms: 4, hops: 12, hops_ms: 36 });
    expect(firstTokenMs(costs, 3, 2)).toBe(135);
    // r = 1 is the single-call path: 8 hops, the whole prefill
    expect(firstTokenBudget(costs, 3, 1)).toEqual({ vision_ms: 90, prefill_ms: 100, head_ms: 4, hops: 8, hops_ms: 24 });
    // a stage of 3 attention layers: 4 hops when spread
    const deep: PipelineCosts = { ...costs, decoder: [{ first: { ...stage("decoder-0", "decoder", 60, 1, 4), attentionLayers: 3 }, rest: [] }] };
    expect(firstTokenBudget(deep, 10, 4)).toEqual({ vision_ms: 22.5, prefill_ms: 15, head_ms: 4, hops: 10, hops_ms: 100 });
    // queued prompts wait at the slowest stage's share 1/r: vision-0's 25 ms here
    expect(pipelinePoint(costs, 3, 16, 2).ttft_s).toBe(0.51);
  });

  it("a replica's measured share replaces 1/r of the whole prefill where the bench timed it", () => {
    const timed: PipelineCosts = { ...costs, vision: costs.vision.map((v) => ({ ...v, spreadMs: { 2: 30 } })) };
    // vision 2 × 30 instead of 90 / 2; decoder stages untimed: 1/r
    expect(firstTokenBudget(timed, 3, 2)).toEqual({ vision_ms: 60, prefill_ms: 50, head_ms: 4, hops: 12, hops_ms: 36 });
    expect(firstTokenBudget(timed, 3, 1).vision_ms).toBe(90);
  });

  it("a layer cut into parallel parts is one hop: the slowest of its parts, for the steps and the prefill", () => {
    // The same two layers, each in two parallel parts (both holding the attention: 2.5 and 2 ms per step).
    const par: PipelineCosts = { ...costs, decoder: [0, 1].map((l) => ({ first: stage(`decoder-l${l}.0`, "decoder", 25, 2.5, 9), rest: [stage(`decoder-l${l}.1`, "decoder", 24, 2, 10)], parallel: true })) };
    // 2 × (h + max(2.5, 2)) + h + 3 + 1 at h = 3 → 2 × 5.5 + 7 = 18 ms (the sequential cut: 25)
    expect(tokenLatencyMs(par, 3, 1)).toBe(18);
    // 16 sessions: 2 × (3 + 10) + 3 + 7 + 1 = 37 ms
    expect(tokenLatencyMs(par, 3, 16)).toBe(37);
    // TTFT: (3 + 50) + (3 + 40) + 3 + 2 × (3 + 25) + 3 + 3 + 1 = 162 ms; 6 hops (the sequential cut: 8)
    expect(firstTokenBudget(par, 3, 1)).toEqual({ vision_ms: 90, prefill_ms: 50, head_ms: 4, hops: 6, hops_ms: 18 });
    expect(firstTokenMs(par, 3)).toBe(162);
    // r = 2: each part is one attention layer, 2 hops per cut layer; the larger part's half: 12.5 ms
    expect(firstTokenBudget(par, 3, 2)).toEqual({ vision_ms: 45, prefill_ms: 25, head_ms: 4, hops: 10, hops_ms: 30 });
    // The simulation walks the same hops: both parts of a layer in one, so one session decodes at 1000 / 18.
    expect(tokenHops(par).map((h) => h.length)).toEqual([2, 2, 2]);
    expect(simulateSessions(par, 3, 1).tokens_per_s_per_session).toBe(Math.round(100_000 / 18) / 100);
  });

  it("a missing batch size is an error, not a guess", () => {
    expect(() => pipelinePoint(costs, 3, 8)).toThrow("has no measured step for 8 sessions");
  });

  it("the JSON last line: the injected hops only, exactly the contract's fields", () => {
    const points = [1, 1.5, 3, 10].map((h) => pipelinePoint(costs, h, 1));
    const json = pipelineJson({ hop_ms_measured_local: 1, plans: [{ dtype: "int4", plan: "sequential", stages: 46, parts_per_layer: 2, head_shards: 5, hops_per_token: 5, calls_per_token: 42, calls_512_tokens: 21_600, timed: [], coordinator_ms: 1, points, lockstep: points, budgets: [] }] }) as { pipeline: Record<string, unknown>[]; hop_ms_measured_local: number };
    expect(Object.keys(json)).toEqual(["pipeline", "hop_ms_measured_local"]);
    expect(json.pipeline.map((p) => p.hop_ms)).toEqual([1.5, 3, 10]);
    expect(Object.keys(json.pipeline[0])).toEqual(["dtype", "stages", "hop_ms", "sessions", "replicas", "tokens_per_s_per_session", "aggregate_tokens_per_s", "ttft_s"]);
  });
});
