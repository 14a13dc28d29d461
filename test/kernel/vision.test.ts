/**
 * The kernel vision path (shared/kernel/vision.ts) on every golden checkpoint: soft tokens within the fp32
 * golden tolerance of transformers' projector output, and within float32 rounding of onnxruntime's on the
 * same converted model, for float weights, int8/int4 weights kept quantised (with `gemm: "float"` dequantised
 * panel by panel as MatMulNBits accuracy_level 0 does; the default integer GEMM is checked in gemm-parity.test.ts),
 * the kernel holding them in their stored size, and a model whose vision tower is split
 * over several stages (identical to the unsplit one). Runs the relaxed-SIMD build (Node ≥ 22, as in workerd,
 * where test/workers/golden-parity.test.ts checks it too).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { convert } from "../../converter/convert.ts";
import { loadModel } from "../../cli/node-runtime.ts";
import { stagesOf } from "../../shared/model/manifest.ts";
import type { WeightDtype } from "../../shared/model/weights.ts";
import type { GemmCompute } from "../../shared/kernel/gemm.ts";
import { GOLDEN_CASES, loadGolden, maxAbsDiff, type GoldenCase } from "../helpers/golden.ts";

const work = mkdtempSync(join(tmpdir(), "pg-kvision-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function encodeBoth(name: GoldenCase, dtype: WeightDtype, maxShardMb: number | null = null, gemm: GemmCompute = "float") {
  const g = loadGolden(name);
  const out = join(work, `${name}-${dtype}-${maxShardMb ?? "whole"}`);
  await convert(g.dir, out, { dtype, maxShardMb });
  const ort = await loadModel(out, { vision: "ort", prefill: "ort", decode: "ort" });
  const kernel = await loadModel(out, { vision: "kernel", prefill: "ort", decode: "ort" }, { gemm });
  const [a, b] = [await ort.encodeImage(g.pixelValues), await kernel.encodeImage(g.pixelValues)];
  expect([b.tokens, b.dim]).toEqual([a.tokens, a.dim]);
  return { g, ort: a.data, kernel: b.data, stages: stagesOf(kernel.manifest, "vision").length, memory: (await kernel.kernelMemory()).vision!, files: stagesOf(kernel.manifest, "vision").reduce((a, s) => a + kernel.manifest.files[s.weights].bytes, 0) };
}

describe("kernel vision path", () => {
  for (const name of GOLDEN_CASES) {
    it(`${name} fp32: soft tokens match transformers (1e-4) and onnxruntime`, async () => {
      const r = await encodeBoth(name, "fp32");
      expect(r.memory.flavor).toBe("relaxed"); // Node ≥ 22 (package.json engines) runs the relaxed-SIMD build
      expect(maxAbsDiff(r.kernel, r.g.projectorOutput).max).toBeLessThanOrEqual(1e-4);
      expect(maxAbsDiff(r.kernel, r.ort).max).toBeLessThanOrEqual(1e-4);
    });
  }

  for (const dtype of ["int8", "int4"] as const) {
    it(`${dtype} weights stay quantised in kernel memory and, with gemm "float", compute as onnxruntime's MatMulNBits (accuracy_level 0)`, async () => {
      const r = await encodeBoth("paligemma2-tiny", dtype);
      expect(maxAbsDiff(r.kernel, r.ort).max).toBeLessThanOrEqual(1e-4);
      expect(maxAbsDiff(r.kernel, r.g.projectorOutput).max).toBeGreaterThan(1e-3); // the quantisation error really is there
      // The vision weights held are at most the stage files' bytes (no widened copy of any matrix).
      expect(r.memory.weightBytes).toBeLessThanOrEqual(r.files);
    });
  }

  it("a vision tower split over several stages gives the same soft tokens as one stage", async () => {
    const whole = await encodeBoth("paligemma-shapes", "fp32");
    const split = await encodeBoth("paligemma-shapes", "fp32", 2);
    expect(whole.stages).toBe(1);
    expect(split.stages).toBeGreaterThan(1);
    expect(split.kernel).toEqual(whole.kernel);
  });
});
