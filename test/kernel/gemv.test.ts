/**
 * The kernel's matrix-vector products against float64 references, on shapes that reach every code path:
 * odd rows (the single-row tail), block counts that are not a multiple of 4 (the per-block tail), block
 * sizes 32 / 64 / 128, K not a multiple of the block (zero padding), and int8 rows longer than one K tile.
 * Runs the plain-SIMD build here; the relaxed build runs in workerd (workerd.test.ts) and wherever this
 * engine validates it.
 */
import { describe, expect, it } from "vitest";
import { Linear } from "../../shared/kernel/linear.ts";
import { toKernelCodes } from "../../shared/kernel/matrix.ts";
import { compileKernel, type KernelFlavor } from "../../shared/kernel/module.ts";
import { kernelSourceForNode } from "../../shared/kernel/node.ts";
import { GEMV_SHAPES, kernelOf, nmse, put, randomNBits, refGemv, refGemvInt8, uniform } from "./helpers.ts";


it("start-up picks the relaxed build exactly when this engine validates it and it passes its self-test", async () => {
  const source = await kernelSourceForNode();
  if (source.kind !== "bytes") throw new Error("Node hands the kernel its bytes");
  const relaxed = WebAssembly.validate(source.relaxed as Uint8Array<ArrayBuffer>)
    ? (new WebAssembly.Instance(await WebAssembly.compile(source.relaxed as Uint8Array<ArrayBuffer>)).exports.selfTest as () => number)() === 1
    : false;
  expect((await compileKernel(source)).flavor).toBe(relaxed ? "relaxed" : "simd");
  expect((await compileKernel(await kernelSourceForNode("simd"))).flavor).toBe("simd");
});

// Every build this engine runs (Node 20: plain SIMD only; workerd.test.ts covers relaxed SIMD in workerd).
const builds = (await Promise.all((["simd", "relaxed"] as KernelFlavor[]).map(kernelOf))).filter((k) => k !== null);
for (const kernel of builds) {
  describe(`${kernel.flavor} build`, () => {
    const ex = kernel.exports;

    for (const bits of [4, 8] as const) {
      for (const { n, k, bs } of GEMV_SHAPES) {
        it(`int${bits} [${n}, ${k}] block ${bs}: int8 activations exact, float activations ≤ 1e-12 NMSE`, () => {
          const { codes, scales } = randomNBits(n, k, bits, bs, n * k + bits);
          const x = uniform(k, 7 + k);
          const w = put(kernel, codes);
          toKernelCodes(bits, kernel.heap.u8(w, codes.length));
          const s = put(kernel, scales);
          const xp = put(kernel, x);
          const y = kernel.heap.alloc(4 * n);
          const matrix = { kind: bits === 4 ? "q4" : "q8", n, k, blockSize: bs, codes: w, scales: s } as const;
          const exact = refGemv(codes, scales, x, n, k, bits, bs);

          const int8 = new Linear(kernel, { kind: matrix.kind, blockSize: bs }, "int8", k);
          int8.prepare(xp, k);
          int8.apply(matrix, y);
          const got = kernel.heap.f32(y, n).slice();
          const e = nmse(got, refGemvInt8(codes, scales, x, n, k, bits, bs));
          expect(e.nmse, `int8 activations vs their reference, worst row ${e.worst}`).toBeLessThan(1e-12);
          const q = nmse(got, exact);
          expect(q.nmse, `int8 activations vs float, worst row ${q.worst}`).toBeLessThan(2e-4); // activation rounding

          const float = new Linear(kernel, { kind: matrix.kind, blockSize: bs }, "float", k);
          float.prepare(xp, k);
          float.apply(matrix, y);
          const f = nmse(kernel.heap.f32(y, n), exact);
          expect(f.nmse, `float activations, worst row ${f.worst}`).toBeLessThan(1e-12);
        });
      }
    }

    it("fp32 W[n, k] · x with k not a multiple of 16", () => {
      const n = 9;
      const k = 203;
      const w = uniform(n * k, 3);
      const x = uniform(k, 4);
      const y = kernel.heap.alloc(4 * n);
      ex.gemvF32(y, put(kernel, w), put(kernel, x), n, k);
      const ref = Array.from({ length: n }, (_, r) => x.reduce((a, v, c) => a + v * w[r * k + c], 0));
      expect(nmse(kernel.heap.f32(y, n), ref).nmse).toBeLessThan(1e-12);
    });

    it("apply refuses a matrix that does not match the prepared vector", () => {
      const lin = new Linear(kernel, { kind: "q4", blockSize: 32 }, "int8", 64);
      lin.prepare(put(kernel, uniform(64, 1)), 64);
      expect(() => lin.apply({ kind: "q4", n: 2, k: 32, blockSize: 32, codes: 0, scales: 0 }, 0)).toThrow(/applied to a q4 vector of 64/);
    });
  });
}
