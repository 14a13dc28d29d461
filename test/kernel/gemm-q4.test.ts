/**
 * The int4 × int8 GEMM (kernels/assembly/gemm-q4.ts: gemmQ4A8 in the form wideDot picks for this CPU, and
 * each form forced, gemmQ4A8Pairs and gemmQ4A8Wide): C = A · Wᵀ for MatMulNBits int4 W with A
 * quantised per row and chunk of 32 k to ±127 at run time, against a scalar reference that does the same
 * quantisation, the same exact integer sums (codes 0..15 with zero point 8) and the same float32 scale
 * arithmetic in the same order (Math.fround at every step). Stated bounds:
 *   - flags 0 (plain) and 1 (+ C): every output bit-identical to the reference, in both builds and forms (so
 *     they all agree bit for bit);
 *   - flags 2 (gelu_tanh, the kernel's approximation): |C − gelu(reference)| ≤ 1e-5 · (1 + |reference|);
 *   - against the float64 product of A (unquantised) and the dequantised W: NMSE < 1e-8 · (16383 / 127)²,
 *     the bound gemm-q.test.ts states for its levels.
 * Over 6-row tiles and a padded last one, partial 8-column panels, blocks of 32/64/128, k tails (not a multiple
 * of 4, 16, 32 or the block), bias, slices of W and a zero row.
 */
import { describe, expect, it } from "vitest";
import { sliceOf, type KernelMatrix } from "../../shared/kernel/matrix.ts";
import { gemmScratch } from "../../shared/kernel/gemm.ts";
import { codeAt, kernelOf, put, randomNBits, uniform } from "./helpers.ts";
import { expectAgainstReference, gemmA8Reference, nearest } from "./gemm-a8-reference.ts";

const Q4 = 2; // W_Q4 of kernels/assembly/gemm-w.ts


for (const [flavor, fn] of [["simd", "gemmQ4A8"], ["relaxed", "gemmQ4A8"], ["relaxed", "gemmQ4A8Pairs"], ["relaxed", "gemmQ4A8Wide"]] as const) {
  describe(`${fn} (${flavor} build)`, async () => {
    const kernel = (await kernelOf(flavor))!;
    it("the build runs on this engine", () => expect(kernel?.flavor).toBe(flavor));
    const heap = kernel.heap;
    const gemm = kernel.exports[fn];

    /** int4 W stored for the kernel, its code / scale readers and its dense dequantised form. */
    const weights = (n: number, k: number, bs: number, seed: number) => {
      const { codes, scales } = randomNBits(n, k, 4, bs, seed);
      const blocks = Math.ceil(k / bs);
      const code = (j: number, t: number) => codeAt(codes, blocks * bs, 4, bs, j, t); // the stored block's tail too
      const scale = (j: number, b: number) => scales[j * blocks + b];
      const dense = new Float64Array(n * k);
      for (let j = 0; j < n; j++) for (let t = 0; t < k; t++) dense[j * k + t] = (code(j, t) - 8) * scale(j, Math.floor(t / bs));
      const w = heap.alloc(codes.length);
      heap.u8(w, codes.length).set(codes);
      const matrix: KernelMatrix = { kind: "q4", n, k, blockSize: bs, codes: w, scales: put(kernel, scales) };
      return { code, scale, dense, matrix };
    };

    for (const { m, n, k, bs } of [
      { m: 6, n: 8, k: 32, bs: 32 },
      { m: 13, n: 21, k: 70, bs: 32 }, // a padded 6-row tile, a partial panel, a partial last block
      { m: 270, n: 24, k: 128, bs: 64 },
      { m: 7, n: 9, k: 4304 % 256, bs: 32 }, // SigLIP's 4304 ends in a half block
      { m: 5, n: 3, k: 77, bs: 128 }, // k shorter than one block: chunks past k are zero
      { m: 11, n: 17, k: 301, bs: 64 },
    ]) {
      for (const flags of [0, 1, 2]) {
        it(`W[${n}, ${k}] (blocks of ${bs}), A[${m}, ${k}]${["", ", + C", ", gelu"][flags]}`, () => {
          const lda = k + 3;
          const ldc = n + 5;
          const a = uniform(m * lda, m + n + k);
          for (let i = 0; i < m; i++) a[i * lda] *= 4; // one larger value per row: its chunk's scale follows it
          const c0 = uniform(m * ldc, 9);
          const bias = uniform(Math.ceil(n / 8) * 8, 8);
          const { code, scale, dense, matrix } = weights(n, k, bs, 3);
          const c = put(kernel, c0);
          const scratch = gemmScratch(m, k, bs);
          gemm(c, ldc, put(kernel, a), lda, matrix.codes, matrix.scales, Q4, bs, put(kernel, bias), m, n, k, flags, heap.alloc(scratch.work), heap.alloc(scratch.panel), k);
          const got = heap.f32(c, m * ldc).slice();
          const acc = gemmA8Reference(a, lda, m, k, code, scale, n, bs, 8);
          expectAgainstReference(got, acc, c0, bias, dense, a, lda, m, n, k, ldc, flags);
        });
      }
    }

    it("a slice of W (rows [8, 16), columns [64, 192) of [24, 256], blocks of 64) reads only that block", () => {
      const [n, k, bs, m] = [24, 256, 64, 7];
      const { code, scale, matrix } = weights(n, k, bs, 43);
      const s = sliceOf(matrix, 8, 8, 64, 128);
      const a = uniform(m * 128, 44);
      const c = heap.alloc(4 * m * 8);
      const scratch = gemmScratch(m, 128, bs);
      gemm(c, 8, put(kernel, a), 128, s.w, s.scales, s.kind, s.blockSize, 0, m, s.n, s.k, 0, heap.alloc(scratch.work), heap.alloc(scratch.panel), s.kRow);
      const want = gemmA8Reference(a, 128, m, 128, (j, t) => code(8 + j, 64 + t), (j, b) => scale(8 + j, 1 + b), 8, bs, 8);
      expect(Array.from(heap.f32(c, m * 8))).toEqual(Array.from(want));
    });

    it("wideDot: 0 in the plain build; the relaxed build's probe gives 0 or 1, the same on every call", () => {
      const probe = [kernel.exports.wideDot(), kernel.exports.wideDot()].map(Number);
      if (flavor === "simd") expect(probe).toEqual([0, 0]);
      else expect([[0, 0], [1, 1]]).toContainEqual(probe);
    });

    it("halves round to even, as f32x4.nearest (rows whose scale is 1: max|A| = 127)", () => {
      const [n, k, bs, m] = [8, 64, 32, 2];
      const { code, scale, matrix } = weights(n, k, bs, 11);
      const halves = [127, 2.5, -3.5, 0.5, -0.5, 1.5, -1.5, 126.5, -126.5, 64.5, -63.5, 3.25, -7.75, 0, 99.5, -100.5];
      const a = Float32Array.from({ length: m * k }, (_, i) => halves[(i * 7) % halves.length] * (i % 3 === 0 ? -1 : 1));
      a[0] = a[32] = a[64] = a[96] = 127; // every chunk's max
      const c = heap.alloc(4 * m * n);
      const scratch = gemmScratch(m, k, bs);
      gemm(c, n, put(kernel, a), k, matrix.codes, matrix.scales, Q4, bs, 0, m, n, k, 0, heap.alloc(scratch.work), heap.alloc(scratch.panel), k);
      expect(Array.from(heap.f32(c, m * n))).toEqual(Array.from(gemmA8Reference(a, k, m, k, code, scale, n, bs, 8)));
      // and the reference does round half to even: a tie-away rounding would differ
      expect([nearest(2.5), nearest(-3.5), nearest(0.5), nearest(-0.5), nearest(126.5)]).toEqual([2, -4, 0, -0, 126]);
    });

    it("a zero row gives bias only (scale 0, no division by zero)", () => {
      const [n, k, bs, m] = [8, 64, 32, 2];
      const { matrix } = weights(n, k, bs, 7);
      const a = new Float32Array(m * k);
      a.set(uniform(k, 5), k); // row 0 zero, row 1 not
      const bias = uniform(8, 6);
      const c = heap.alloc(4 * m * n);
      const scratch = gemmScratch(m, k, bs);
      gemm(c, n, put(kernel, a), k, matrix.codes, matrix.scales, Q4, bs, put(kernel, bias), m, n, k, 0, heap.alloc(scratch.work), heap.alloc(scratch.panel), k);
      expect(Array.from(heap.f32(c, n))).toEqual(Array.from(bias));
    });
  });
}
