/**
 * The multi-vector GEMVs (kernels/assembly/gemv-batch*.ts, through LinearBatch): for B = 1, 2, 3, 8, 16 vectors
 * and every weight format and compute mode, each y_b equals the single GEMV of x_b bit for bit, on the shapes
 * that reach every single-GEMV code path (block tails, block sizes 32/64/128, K padding, int8 K tiles), and
 * for more vectors than one kernel call takes. Runs every build this engine runs (Node ≥ 22: both).
 */
import { describe, expect, it } from "vitest";
import { Linear, type QuantCompute } from "../../shared/kernel/linear.ts";
import { LinearBatch, MAX_VECTORS } from "../../shared/kernel/linear-batch.ts";
import { toKernelCodes, type KernelMatrix } from "../../shared/kernel/matrix.ts";
import type { Kernel, KernelFlavor } from "../../shared/kernel/module.ts";
import { GEMV_SHAPES, kernelOf, put, randomNBits, uniform } from "./helpers.ts";

const BATCHES = [1, 2, 3, 8, 16, MAX_VECTORS + 3];

function matrixOf(kernel: Kernel, dtype: "fp32" | "int8" | "int4", n: number, k: number, bs: number): KernelMatrix {
  if (dtype === "fp32") return { kind: "f32", n, k, w: put(kernel, uniform(n * k, n + k)) };
  const bits = dtype === "int4" ? 4 : 8;
  const { codes, scales } = randomNBits(n, k, bits, bs, n * k + bits);
  const w = put(kernel, codes);
  toKernelCodes(bits, kernel.heap.u8(w, codes.length));
  return { kind: bits === 4 ? "q4" : "q8", n, k, blockSize: bs, codes: w, scales: put(kernel, scales) };
}

const builds = (await Promise.all((["simd", "relaxed"] as KernelFlavor[]).map(kernelOf))).filter((k) => k !== null);
for (const kernel of builds) {
  describe(`${kernel.flavor} build`, () => {
    const cases = [
      ["fp32", "float"],
      ["int8", "int8"],
      ["int8", "float"],
      ["int4", "int8"],
      ["int4", "float"],
    ] as const;
    for (const [dtype, compute] of cases) {
      for (const { n, k, bs } of GEMV_SHAPES) {
        it(`${dtype} [${n}, ${k}] block ${bs}, ${compute} compute: B vectors at once equal B single GEMVs bit for bit`, () => {
          const m = matrixOf(kernel, dtype, n, k, bs);
          const most = Math.max(...BATCHES);
          const kind = { kind: m.kind, blockSize: bs };
          const lins = Array.from({ length: most }, () => new Linear(kernel, kind, compute as QuantCompute, k));
          const xs = Array.from({ length: most }, (_, b) => put(kernel, uniform(k, 1000 * b + k)));
          lins.forEach((l, b) => l.prepare(xs[b], k));
          const single = lins.map((l) => {
            const y = kernel.heap.alloc(4 * n);
            l.apply(m, y);
            return Array.from(kernel.heap.f32(y, n));
          });
          const batch = new LinearBatch(kernel);
          for (const B of BATCHES) {
            const ys = Array.from({ length: B }, () => kernel.heap.alloc(4 * n));
            batch.apply(lins.slice(0, B), m, ys);
            ys.forEach((y, b) => expect(Array.from(kernel.heap.f32(y, n)), `B = ${B}, vector ${b}`).toEqual(single[b]));
          }
          // The int-compute kernels called directly too (LinearBatch keeps the tiled path for relaxed int8).
          if (m.kind !== "f32" && compute === "int8") {
            const B = 16;
            const tab = kernel.heap.alloc(16 * B);
            const ys = Array.from({ length: B }, () => kernel.heap.alloc(4 * n));
            const t = new Uint32Array(kernel.heap.memory.buffer, tab, 4 * B);
            lins.slice(0, B).forEach((l, b) => t.set([ys[b], l.operands.xq, l.operands.sx, l.operands.corr], 4 * b));
            (m.kind === "q4" ? kernel.exports.gemvQ4N : kernel.exports.gemvQ8N)(tab, m.codes, m.scales, n, k, bs, B);
            ys.forEach((y, b) => expect(Array.from(kernel.heap.f32(y, n)), `gemvQ${m.kind === "q4" ? 4 : 8}N, vector ${b}`).toEqual(single[b]));
          }
        });
      }
    }
  });
}

it("runs both builds here (Node ≥ 22 validates relaxed SIMD), so both are checked", () => {
  expect(builds.map((k) => k.flavor).sort()).toEqual(["relaxed", "simd"]);
});
