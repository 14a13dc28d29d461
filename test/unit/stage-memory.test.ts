/** The resident-size model, term by term, on PaliGemma 3B's shapes (docs/scale-out.md has the same arithmetic). */
import { describe, expect, it } from "vitest";
import { CODE_BYTES, DEFAULT_STAGE_BUDGET, VISION_CODE_BYTES, estimateStage, matrixBytes, type StageSpec } from "../../shared/model/stage-memory.ts";
import { PG1_3B } from "../helpers/real-configs.ts";

const layer: StageSpec = { kind: "decoder", from: 0, to: 1 };
const int8 = { dtype: "int8", blockSize: 32 } as const;
const int4 = { dtype: "int4", blockSize: 32 } as const;

describe("estimateStage", () => {
  it("a Gemma-2B layer holds 123.9 MB of weights at int8 and 68.8 MB at int4, as stored", () => {
    expect(estimateStage(PG1_3B, int8, layer, DEFAULT_STAGE_BUDGET).weightBytes / 1e6).toBeCloseTo(123.88, 2);
    expect(estimateStage(PG1_3B, int4, layer, DEFAULT_STAGE_BUDGET).weightBytes / 1e6).toBeCloseTo(68.83, 2);
    expect(matrixBytes(16384, 2048, int8)).toBe(16384 * 64 * 32 + 4 * 16384 * 64); // codes + f32 scales
  });

  it("fp16 is widened to float32 in memory", () => {
    const fp16 = estimateStage(PG1_3B, { dtype: "fp16", blockSize: 32 }, layer, DEFAULT_STAGE_BUDGET);
    expect(fp16).toEqual(estimateStage(PG1_3B, { dtype: "fp32", blockSize: 32 }, layer, DEFAULT_STAGE_BUDGET));
  });

  it("the KV cache is sessions × context × kvHeads × headDim × 4 bytes × 2 per attention layer", () => {
    const b = { sessions: 3, context: 700, prefillRows: 300, adapterBytes: 0 };
    expect(estimateStage(PG1_3B, int4, { kind: "decoder", from: 2, to: 5 }, b).cacheBytes).toBe(3 * 3 * 700 * 256 * 4 * 2);
    expect(estimateStage(PG1_3B, int4, { ...layer, mlp: { from: 64, to: 128 }, attention: false }, b).cacheBytes).toBe(0);
  });

  it("terms add up, the code allowance is per stage", () => {
    for (const s of [layer, { kind: "vision", from: 0, to: 27 }, { kind: "head", from: 0, to: 257216 }] as const) {
      const e = estimateStage(PG1_3B, int8, s, DEFAULT_STAGE_BUDGET);
      expect(e.residentBytes).toBe(e.weightBytes + e.cacheBytes + e.scratchBytes + e.codeBytes + e.adapterBytes);
      expect(e.codeBytes).toBe(s.kind === "vision" ? VISION_CODE_BYTES : CODE_BYTES);
    }
  });

  it("the adapter cache budget is a term of vision and decoder stages, never of head stages; 0 by default", () => {
    expect(DEFAULT_STAGE_BUDGET.adapterBytes).toBe(0);
    const b = { ...DEFAULT_STAGE_BUDGET, adapterBytes: 16e6 };
    for (const s of [layer, { kind: "vision", from: 0, to: 27 }, { kind: "head", from: 0, to: 257216 }] as const) {
      const base = estimateStage(PG1_3B, int8, s, DEFAULT_STAGE_BUDGET);
      const e = estimateStage(PG1_3B, int8, s, b);
      expect(base.adapterBytes).toBe(0);
      expect(e.adapterBytes, s.kind).toBe(s.kind === "head" ? 0 : 16e6);
      expect(e).toEqual({ ...base, adapterBytes: e.adapterBytes, residentBytes: base.residentBytes + e.adapterBytes });
    }
  });

  it("MLP parts hold the layer's matrices once between them; each part adds only its norms", () => {
    const whole = estimateStage(PG1_3B, int8, layer, DEFAULT_STAGE_BUDGET).weightBytes;
    const a = estimateStage(PG1_3B, int8, { ...layer, mlp: { from: 0, to: 6144 }, attention: true }, DEFAULT_STAGE_BUDGET).weightBytes;
    const b = estimateStage(PG1_3B, int8, { ...layer, mlp: { from: 6144, to: 16384 }, attention: false }, DEFAULT_STAGE_BUDGET).weightBytes;
    expect(a + b - whole).toBe(4 * 2048); // Gemma 1: the MLP part's own post_attn_norm
  });

  it("scratch grows with the prefill rows: x, queries, RoPE tables and the JS rows are held for all of them", () => {
    const at = (prefillRows: number) => estimateStage(PG1_3B, int8, layer, { ...DEFAULT_STAGE_BUDGET, prefillRows }).scratchBytes;
    expect(at(512) - at(256)).toBe(256 * 4 * (2048 + 2048 + 2 * 256 + 2 * 2048)); // x, queries, cos/sin [P, hd], JS in/out
  });

  it("a stage that is not a one-layer decoder stage cannot be a part", () => {
    expect(() => estimateStage(PG1_3B, int8, { kind: "decoder", from: 0, to: 2, attention: false }, DEFAULT_STAGE_BUDGET)).toThrow(/one-layer decoder/);
    expect(() => estimateStage(PG1_3B, int8, { ...layer, mlp: { from: 0, to: 20000 } }, DEFAULT_STAGE_BUDGET)).toThrow(/not inside/);
  });
});
