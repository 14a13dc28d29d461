/**
 * The event simulation of concurrent sessions (bench/pipeline/simulate.ts) on hand-made costs: one session is the
 * lockstep formula exactly, idle stages give N sessions N times one's throughput, a saturated stage caps it at its
 * measured batched rate, and a burst of sessions coalesces into batches.
 */
import { describe, expect, it } from "vitest";
import { tokenLatencyMs, type PipelineCosts, type StageCost } from "../../bench/pipeline/model.ts";
import { passMs, simulateSessions } from "../../bench/pipeline/simulate.ts";

const stage = (name: string, kind: StageCost["kind"], steps: Record<number, number>): StageCost => ({ name, kind, prefillMs: 0, stepMs: steps });
/** `layers` decoder stages of `ms` per step (16 rows: `ms16`), one head shard, coordinator 1 ms. */
const chain = (layers: number, ms: number, ms16: number, head = 2): PipelineCosts => ({
  vision: [],
  decoder: Array.from({ length: layers }, (_, l) => ({ first: stage(`decoder-${l}`, "decoder", { 1: ms, 4: (3 * ms + ms16) / 4, 16: ms16 }), rest: [] })),
  head: [stage("head-0", "head", { 1: head, 4: 2 * head, 16: 6 * head })],
  coordinatorMs: 1,
});

describe("concurrent sessions, simulated", () => {
  it("a pass's time is the measured step, linear between measured batch sizes, and an error outside them", () => {
    const s = stage("d", "decoder", { 1: 2, 4: 5, 16: 17 });
    expect(passMs(s, 1)).toBe(2);
    expect(passMs(s, 3)).toBe(4);
    expect(passMs(s, 10)).toBe(11);
    expect(() => passMs(s, 17)).toThrow("no measured step brackets 17 sessions");
  });

  it("one session: exactly the lockstep per-token latency", () => {
    const p = chain(5, 2, 20);
    // 5 × (3 + 2) + (3 + 2) + 1 = 31 ms
    expect(tokenLatencyMs(p, 3, 1)).toBe(31);
    expect(simulateSessions(p, 3, 1).aggregate_tokens_per_s).toBe(Math.round((100 * 1000) / 31) / 100);
    expect(simulateSessions(p, 3, 1).mean_batch).toBe(1);
  });

  it("stages idle most of the time: staggered sessions do not meet, N sessions give N times one's tokens", () => {
    // hops dominate: 20 stages of 0.1 ms, 10 ms hops; a stage is busy 4 × 0.1 of every ~212 ms
    const p = chain(20, 0.1, 1.6, 0.1);
    const one = simulateSessions(p, 10, 1).aggregate_tokens_per_s;
    const four = simulateSessions(p, 10, 4);
    expect(four.mean_batch).toBe(1);
    expect(four.aggregate_tokens_per_s / one).toBeCloseTo(4, 2);
  });

  it("a saturated stage caps throughput at its measured batched rate", () => {
    // one heavy stage of 10 ms a row (16 rows: 100 ms), no hops: 16 sessions can do no better than 160 tokens/s
    const p: PipelineCosts = { vision: [], decoder: [{ first: stage("heavy", "decoder", { 1: 10, 4: 40, 16: 100 }), rest: [] }], head: [stage("head-0", "head", { 1: 0, 4: 0, 16: 0 })], coordinatorMs: 0 };
    // The heavy stage is never idle and serves big passes (16 rows: 160 tokens/s; one row at a time: 100).
    const r = simulateSessions(p, 0, 16, { warmup: 8, tokens: 40 });
    expect(r.aggregate_tokens_per_s).toBeLessThanOrEqual(160);
    expect(r.aggregate_tokens_per_s).toBeGreaterThan(150);
    expect(r.mean_batch).toBeGreaterThan(4);
  });

  it("a burst of sessions arriving together is served in coalesced passes (lockstep), never faster than stepping alone per row", () => {
    const p = chain(4, 2, 20);
    const burst = simulateSessions(p, 3, 16, { arrivals: "burst" });
    // the first stage takes one row, then the other 15 together; the groups stay together after that
    expect(burst.mean_batch).toBeGreaterThan(7);
    expect(burst.aggregate_tokens_per_s).toBeLessThan((16 * 1000) / tokenLatencyMs(p, 3, 1));
  });
});
