/**
 * Smoke test of the benchmark's kernel rows (bench/kernel-rows.ts) on the tiny shape in this Node process:
 * every decode dtype × compute gives decode_layer and head rows, the vision shape one fp32 vision_layer row,
 * and prefillRows one prefill_layer row per weight dtype, each with a finite positive time (no speed is asserted).
 */
import { expect, it } from "vitest";
import { kernelRows } from "../../bench/kernel-rows.ts";
import { benchShape } from "../../bench/shapes.ts";

it("kernelRows: decode and head rows per dtype, the vision row and prefill rows, on the tiny shape", async () => {
  const c = benchShape("tiny").config;
  const vision = { tokens: c.imageTokens, hidden: c.vision.hidden, heads: c.vision.heads, intermediate: c.vision.intermediate };
  const rows = await kernelRows({ text: c.text, pastTokens: 20, headRows: 256, runtimes: ["node-kernel"], quick: true, vision, prefillRows: 12 });
  const keys = rows.map((r) => `${r.dtype}/${r.stage}`).sort();
  expect(keys).toEqual(
    ["int4-acc4-kernel", "int4-kernel", "int8-acc4-kernel", "int8-kernel", "fp32-kernel"]
      .flatMap((d) => [`${d}/decode_layer`, `${d}/head`])
      .concat(["fp32-kernel/vision_layer", "fp32-kernel/prefill_layer", "int8-kernel/prefill_layer", "int4-kernel/prefill_layer"])
      .sort(),
  );
  for (const r of rows) {
    expect(r.runtime).toBe("node-kernel");
    expect(Number.isFinite(r.ms) && r.ms > 0, `${r.dtype} ${r.stage}: ${r.ms} ms`).toBe(true);
    expect(r.gbps).toBeGreaterThan(0);
  }
}, 60_000);
