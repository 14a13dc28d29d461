/**
 * Planning by resident size (--max-stage-mb) on PaliGemma 3B's shapes: every stage's estimate fits, the stages
 * cover the model exactly once, too-big decoder layers are cut into the fewest MLP parts.
 */
import { describe, expect, it } from "vitest";
import { planByMemory } from "../../converter/plan-memory.ts";
import type { PlannedStage } from "../../converter/plan.ts";
import { DEFAULT_STAGE_BUDGET, estimateStage, mlpPartUnit, type StageBudget } from "../../shared/model/stage-memory.ts";
import { PG1_3B } from "../helpers/real-configs.ts";

const MAX = 100e6;
const t = PG1_3B.text;

function plan(dtype: "int8" | "int4", budget: StageBudget = DEFAULT_STAGE_BUDGET, maxStageBytes: number | null = MAX): PlannedStage[] {
  return planByMemory(PG1_3B, { dtype, blockSize: 32 }, { maxStageBytes, budget });
}

/** Every layer, every MLP row of every decoder layer and every vocabulary row exactly once, in order. */
function expectCoverage(stages: readonly PlannedStage[]): void {
  const of = (kind: PlannedStage["kind"]) => stages.filter((s) => s.kind === kind);
  for (const [kind, end] of [["vision", 27], ["head", t.vocab]] as const) {
    const mine = of(kind);
    expect(mine.every((s) => s.mlp === undefined && s.attention === undefined)).toBe(true);
    expect(mine.map((s) => s.from)).toEqual([0, ...mine.slice(0, -1).map((s) => s.to)]);
    expect(mine.at(-1)!.to).toBe(end);
  }
  const rows = Array.from({ length: t.layers }, () => 0); // MLP rows covered per layer, in order
  const attention = Array.from({ length: t.layers }, () => 0);
  for (const s of of("decoder")) {
    for (let l = s.from; l < s.to; l++) {
      const r = s.mlp ?? { from: 0, to: t.intermediate };
      expect(r.from, `layer ${l}`).toBe(rows[l]);
      if (s.attention !== false) {
        expect(rows[l], `layer ${l}: attention in its first part`).toBe(0);
        attention[l]++;
      }
      rows[l] = r.to;
    }
  }
  expect(rows).toEqual(rows.map(() => t.intermediate));
  expect(attention).toEqual(attention.map(() => 1));
}

function expectFits(dtype: "int8" | "int4", stages: readonly PlannedStage[], budget = DEFAULT_STAGE_BUDGET): void {
  for (const s of stages) {
    const e = estimateStage(PG1_3B, { dtype, blockSize: 32 }, s, budget);
    expect(e.residentBytes, `${s.kind} [${s.from}, ${s.to}) ${JSON.stringify(s.mlp ?? "")}`).toBeLessThanOrEqual(MAX);
    expect(s.bytes).toBe(e.residentBytes);
  }
}

describe("planByMemory, PaliGemma 3B at --max-stage-mb 100", () => {
  it("int8: every stage fits, the model is covered once, each decoder layer is cut into 2 MLP parts (it needs 163 MB whole)", () => {
    const stages = plan("int8");
    expectFits("int8", stages);
    expectCoverage(stages);
    const dec = stages.filter((s) => s.kind === "decoder");
    expect(dec.length).toBe(2 * t.layers);
    const whole = estimateStage(PG1_3B, { dtype: "int8", blockSize: 32 }, { kind: "decoder", from: 0, to: 1 }, DEFAULT_STAGE_BUDGET);
    expect(whole.residentBytes).toBeGreaterThan(MAX); // so one part is too few: 2 is the fewest
    for (const s of dec) {
      expect(s.to - s.from).toBe(1);
      expect(s.mlp!.from % mlpPartUnit({ dtype: "int8", blockSize: 32 })).toBe(0);
    }
    expect(dec.map((s) => s.attention)).toEqual(dec.map((_, i) => i % 2 === 0));
    expect(stages.filter((s) => s.kind === "vision").length).toBe(9);
    expect(stages.filter((s) => s.kind === "head").length).toBe(8);
  });

  it("int4 at the default 4 sessions × 1024 tokens, 320 prefill rows: each decoder layer in 2 MLP parts (it needs 108.4 MB whole)", () => {
    const stages = plan("int4");
    expectFits("int4", stages);
    expectCoverage(stages);
    const dec = stages.filter((s) => s.kind === "decoder");
    expect(dec.length).toBe(2 * t.layers);
    expect(estimateStage(PG1_3B, { dtype: "int4", blockSize: 32 }, { kind: "decoder", from: 0, to: 1 }, DEFAULT_STAGE_BUDGET).residentBytes / 1e6).toBeCloseTo(108.39, 1);
    expect(Math.max(...dec.map((s) => s.bytes)) / 1e6).toBeCloseTo(71.78, 1);
    expect(stages.filter((s) => s.kind === "vision").length).toBe(5);
    expect(stages.filter((s) => s.kind === "head").length).toBe(5);
  });

  it("int4 with 2 sessions of 512 tokens and 272 prefill rows: one whole decoder layer per stage (99.2 MB)", () => {
    const budget = { sessions: 2, context: 512, prefillRows: 272, adapterBytes: 0 };
    const stages = plan("int4", budget);
    expectFits("int4", stages, budget);
    expectCoverage(stages);
    expect(stages.filter((s) => s.kind === "decoder").map((s) => [s.from, s.to, s.mlp])).toEqual(
      Array.from({ length: t.layers }, (_, l) => [l, l + 1, undefined]),
    );
    expect(Math.max(...stages.filter((s) => s.kind === "decoder").map((s) => s.bytes)) / 1e6).toBeCloseTo(99.22, 1);
  });

  it("room for adapters (a 16 MB adapter cache per stage) leaves less for weights: every estimate with it fits", () => {
    const budget = { ...DEFAULT_STAGE_BUDGET, adapterBytes: 16e6 };
    const stages = plan("int4", budget);
    expectFits("int4", stages, budget);
    expectCoverage(stages);
    const count = (ss: readonly PlannedStage[], kind: string) => ss.filter((s) => s.kind === kind).length;
    const without = plan("int4");
    expect(count(stages, "vision")).toBeGreaterThan(count(without, "vision"));
    expect(count(stages, "head")).toBe(count(without, "head")); // adapters never touch the head
    expect(plan("int4", { ...DEFAULT_STAGE_BUDGET, adapterBytes: 0 })).toEqual(without); // the default plan
  });

  it("parts of a cut layer are balanced: the largest is as small as the fewest parts allow", () => {
    const dec = plan("int8").filter((s) => s.kind === "decoder" && s.from === 0);
    const [a, b] = dec.map((s) => s.bytes);
    expect(Math.abs(a - b)).toBeLessThan(0.01 * MAX);
  });

  it("whole layers are packed together when several fit", () => {
    const big = plan("int4", DEFAULT_STAGE_BUDGET, 300e6).filter((s) => s.kind === "decoder");
    expect(big.every((s) => s.mlp === undefined)).toBe(true);
    expect(big.some((s) => s.to - s.from > 1)).toBe(true);
  });

  it("without a budget each part is one stage", () => {
    expect(plan("int8", DEFAULT_STAGE_BUDGET, null).map((s) => [s.kind, s.from, s.to])).toEqual([
      ["vision", 0, 27],
      ["decoder", 0, 18],
      ["head", 0, t.vocab],
    ]);
  });

  it("an impossible budget names the layer and what it needs", () => {
    expect(() => plan("int8", DEFAULT_STAGE_BUDGET, 30e6)).toThrow(
      "vision layer 0 needs 56.92 MB resident (weights 21.10, KV cache 0.00, scratch 18.82, code 17.00), over --max-stage-mb 30.00",
    );
    expect(() => planByMemory({ ...PG1_3B, vision: { ...PG1_3B.vision, hidden: 64, heads: 4, intermediate: 128 } }, { dtype: "int8", blockSize: 32 }, { maxStageBytes: 30e6, budget: DEFAULT_STAGE_BUDGET })).toThrow(
      /^decoder layer 0 needs 163\.44 MB resident .*, over --max-stage-mb 30\.00; cut into MLP parts of 32-row units, decoder layer 0 attention \+ MLP rows \[0, 32\) alone still needs 54\.46 MB resident/,
    );
  });
});

describe("planByMemory with parallel parts, PaliGemma 3B at --max-stage-mb 100", () => {
  const opts = (o: object) => planByMemory(PG1_3B, { dtype: "int4", blockSize: 32 }, { maxStageBytes: MAX, budget: DEFAULT_STAGE_BUDGET, ...o });
  const w = { dtype: "int4", blockSize: 32 } as const;

  it("every part holds the attention and says so; each estimate counts its replicated attention weights and KV cache", () => {
    const stages = opts({ parallelParts: true });
    expectFits("int4", stages);
    const dec = stages.filter((s) => s.kind === "decoder");
    expect(dec.length).toBe(2 * t.layers); // 82.1 MB each: still the fewest, 2
    expect(dec.every((s) => s.attention === true && s.cut === "parallel")).toBe(true);
    const [p0, p1] = dec;
    const mlpOnly = estimateStage(PG1_3B, w, { ...p1, attention: false }, DEFAULT_STAGE_BUDGET); // the same rows without attention
    const withAttention = estimateStage(PG1_3B, w, p1, DEFAULT_STAGE_BUDGET);
    expect(withAttention.cacheBytes).toBe(DEFAULT_STAGE_BUDGET.sessions * DEFAULT_STAGE_BUDGET.context * t.kvHeads * t.headDim * 4 * 2);
    expect(mlpOnly.cacheBytes).toBe(0);
    expect(withAttention.weightBytes - mlpOnly.weightBytes).toBeGreaterThan(5e6); // q, k, v, o at int4 and the norms
    expect(p0.bytes).toBe(p1.bytes);
    expect(p0.mlp).toEqual({ from: 0, to: t.intermediate / 2 });
    // int8: the replicated attention does not leave room for halves (sequential: 2 parts), so 3 parts.
    const int8 = planByMemory(PG1_3B, { dtype: "int8", blockSize: 32 }, { maxStageBytes: MAX, budget: DEFAULT_STAGE_BUDGET, parallelParts: true });
    expectFits("int8", int8);
    expect(int8.filter((s) => s.kind === "decoder").length).toBe(3 * t.layers);
  });

  it("--min-mlp-parts: at least that many parts, rows tiled in order; --head-shards: at least that many head shards", () => {
    const stages = opts({ parallelParts: true, minMlpParts: 6, headShards: 10 });
    expectFits("int4", stages);
    const dec = stages.filter((s) => s.kind === "decoder");
    expect(dec.length).toBe(6 * t.layers);
    for (let l = 0; l < t.layers; l++) {
      const mine = dec.filter((s) => s.from === l);
      expect(mine.map((s) => s.mlp!.from)).toEqual([0, ...mine.slice(0, -1).map((s) => s.mlp!.to)]);
      expect(mine.at(-1)!.mlp!.to).toBe(t.intermediate);
    }
    const head = stages.filter((s) => s.kind === "head");
    expect(head.length).toBe(10);
    expect(head.map((s) => s.from)).toEqual([0, ...head.slice(0, -1).map((s) => s.to)]);
    expect(head.at(-1)!.to).toBe(t.vocab);
    // Fewer than the budget needs changes nothing; more parts than units, or a part over the budget, is refused.
    expect(opts({ parallelParts: true, minMlpParts: 1 })).toEqual(opts({ parallelParts: true }));
    expect(() => opts({ minMlpParts: 1000 })).toThrow("--min-mlp-parts must be 1…512 (32-row units of 16384), got 1000");
    expect(() => opts({ headShards: 0 })).toThrow("--head-shards must be 1…257216, got 0");
    // The sequential cut is unchanged by default.
    expect(plan("int4").filter((s) => s.kind === "decoder").every((s) => s.cut === undefined)).toBe(true);
  });
});
