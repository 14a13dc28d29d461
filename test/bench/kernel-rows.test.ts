/**
 * Smoke test of the benchmark's kernel rows (bench/kernel-rows.ts) on the tiny shape in this Node process:
 * every decode dtype × compute gives decode_layer and head rows, the vision shape one fp32 vision_layer row,
 * prefillRows one prefill_layer row per layer variant (weights × GEMM), and GEMM shapes one gemm row per shape
 * and variant, each with a finite positive time (no speed is asserted).
 */
import { expect, it } from "vitest";
import { kernelRows } from "../../bench/kernel-rows.ts";
import { benchShape } from "../../bench/shapes.ts";

it("kernelRows: decode and head rows per dtype, vision, prefill and GEMM rows per variant, on the tiny shape", async () => {
  const c = benchShape("tiny").config;
  const vision = { tokens: c.imageTokens, hidden: c.vision.hidden, heads: c.vision.heads, intermediate: c.vision.intermediate };
  const rows = await kernelRows({ text: c.text, pastTokens: 20, headRows: 256, runtimes: ["node-kernel"], quick: true, vision, prefillRows: 12, gemmShapes: [{ name: "a", m: 7, n: 9, k: 64 }, { name: "b", m: 12, n: 16, k: 48 }] });
  const keys = rows.map((r) => `${r.dtype}/${r.stage}`).sort();
  expect(keys).toEqual(
    ["int4-acc4-kernel", "int4-kernel", "int8-acc4-kernel", "int8-kernel", "fp32-kernel"]
      .flatMap((d) => [`${d}/decode_layer`, `${d}/head`])
      .concat(["fp32-kernel", "int8-kernel", "int4-kernel", "int4-i16-kernel", "int8-a8-kernel", "int8-float-kernel"].flatMap((d) => [`${d}/vision_layer`, `${d}/prefill_layer`, `${d}/gemm`, `${d}/gemm`]))
      .concat(["int4-pairs-kernel", "int8-i7-kernel", "int4-i7-kernel", "int8-split-kernel"].flatMap((d) => [`${d}/gemm`, `${d}/gemm`]))
      .sort(),
  );
  for (const r of rows) {
    expect(r.runtime).toBe("node-kernel");
    expect(Number.isFinite(r.ms) && r.ms > 0, `${r.dtype} ${r.stage}: ${r.ms} ms`).toBe(true);
    expect(r.gbps).toBeGreaterThan(0);
    if (r.stage === "gemm") expect(r.gops! * r.ms * 1e6).toBeCloseTo(2 * r.shape!.m * r.shape!.n * r.shape!.k, 3);
  }
}, 60_000);
