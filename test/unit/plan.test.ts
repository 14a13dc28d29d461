/** Stage planning for a real-size model: every stage fits the budget, stages tile layers and vocabulary. */
import { describe, expect, it } from "vitest";
import { planStages } from "../../converter/plan.ts";
import type { ModelConfig } from "../../shared/model/config.ts";

/** PaliGemma 2 3B at 224 px (shapes from ../shared/docs/paligemma.md). */
const PG2_3B: ModelConfig = {
  variant: "paligemma2",
  vision: { imageSize: 224, patchSize: 14, hidden: 1152, layers: 27, heads: 16, intermediate: 4304, layerNormEps: 1e-6 },
  text: {
    family: "gemma2", hidden: 2304, layers: 26, heads: 8, kvHeads: 4, headDim: 256, intermediate: 9216, vocab: 257216,
    rmsNormEps: 1e-6, ropeTheta: 10000, queryPreAttnScalar: 256, attnLogitSoftcap: 50, finalLogitSoftcap: 30, slidingWindow: 4096,
  },
  projectionDim: 2304,
  imageTokens: 256,
  tokens: { bos: 2, eos: 1, pad: 0, image: 257152 },
};

describe("planStages", () => {
  // A decoder layer of PaliGemma 2 3B is ~311 MB at fp32, ~156 at fp16, ~83 at int8, ~44 at int4.
  for (const [dtype, budget] of [["fp32", 400e6], ["fp16", 200e6], ["int8", 90e6], ["int4", 90e6]] as const) {
    it(`${dtype}, ${budget / 1e6} MB budget: stages fit and tile every part`, () => {
      const stages = planStages(PG2_3B, { dtype, blockSize: 32 }, budget);
      for (const s of stages) expect(s.bytes, `${s.kind} [${s.from}, ${s.to})`).toBeLessThanOrEqual(budget);
      for (const [kind, end] of [["vision", 27], ["decoder", 26], ["head", 257216]] as const) {
        const mine = stages.filter((s) => s.kind === kind);
        expect(mine[0].from).toBe(0);
        expect(mine.at(-1)!.to).toBe(end);
        mine.slice(1).forEach((s, i) => expect(s.from).toBe(mine[i].to));
      }
      expect(stages.filter((s) => s.kind === "head").length).toBeGreaterThan(1);
    });
  }

  it("without a budget each part is one stage", () => {
    expect(planStages(PG2_3B, { dtype: "fp32", blockSize: 32 }, null).map((s) => [s.kind, s.from, s.to])).toEqual([
      ["vision", 0, 27],
      ["decoder", 0, 26],
      ["head", 0, 257216],
    ]);
  });

  it("a layer larger than the budget is an error that names it", () => {
    expect(() => planStages(PG2_3B, { dtype: "fp32", blockSize: 32 }, 50e6)).toThrow(/vision layer 0 needs 64.85 MB of weights, over --max-shard-mb 50/);
    expect(() => planStages(PG2_3B, { dtype: "fp32", blockSize: 32 }, 100e6)).toThrow(/decoder layer 0 needs 311.47 MB of weights, over --max-shard-mb 100/);
  });
});
