/**
 * The integer GEMMs: C = A · Wᵀ for MatMulNBits int8/int4 W with A quantised per row and block at run time, to
 * int16 (kernels/assembly/gemm-q.ts, ±16383 levels) or to 7 bits (gemm-q7.ts, ±63 levels, 8-bit dot products), against a float64 reference of A (unquantised) times the dequantised W, over every tile
 * path (6-row blocks, a padded last block, partial panels), block sizes 16/32/64, k not a multiple of the block,
 * bias and flags, slices, both builds. Stated bounds:
 *   - each output: |C − ref| ≤ Σₜ ½ · (max|A[r][block of t]| / levels) · |W[c][t]| (the activation rounding, the only
 *     approximation: the block sums are exact int32) + 1e-5 · Σₜ |A[r][t] · W[c][t]| (float32 scale arithmetic);
 *   - NMSE over the whole product < 1e-8 · (16383 / levels)² (uniform A: ≈ 1e-9 expected at ±16383 levels).
 */
import { describe, expect, it } from "vitest";
import { sliceOf, toKernelCodes, type KernelMatrix } from "../../shared/kernel/matrix.ts";
import { gemmScratch } from "../../shared/kernel/gemm.ts";
import { codeAt, kernelOf, nmse, put, randomNBits, uniform } from "./helpers.ts";

const KIND = { q8: 1, q4: 2 } as const;
const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
const dgelu = (x: number) => (gelu(x + 1e-4) - gelu(x - 1e-4)) / 2e-4;

for (const [flavor, fn, levels] of [["simd", "gemmQ", 16383], ["relaxed", "gemmQ", 16383], ["simd", "gemmQ7", 63], ["relaxed", "gemmQ7", 63]] as const) {
  describe(`${fn} (${flavor} build)`, async () => {
    const kernel = (await kernelOf(flavor))!;
    it("the build runs on this engine", () => expect(kernel?.flavor).toBe(flavor));
    const ex = { gemmQ: kernel.exports[fn] };
    const heap = kernel.heap;

    /** W stored for the kernel plus its dense dequantised form. */
    const weights = (kind: "q8" | "q4", n: number, k: number, bs: number, seed: number) => {
      const bits = kind === "q8" ? 8 : 4;
      const { codes, scales } = randomNBits(n, k, bits, bs, seed);
      const blocks = Math.ceil(k / bs);
      const dense = new Float64Array(n * k);
      for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) dense[r * k + c] = (codeAt(codes, k, bits, bs, r, c) - (1 << (bits - 1))) * scales[r * blocks + Math.floor(c / bs)];
      const stored = codes.slice();
      toKernelCodes(bits, stored);
      const w = heap.alloc(stored.length);
      heap.u8(w, stored.length).set(stored);
      const m: KernelMatrix = { kind, n, k, blockSize: bs, codes: w, scales: put(kernel, scales) };
      return { dense, m };
    };

    for (const { m, n, k, bs } of [
      { m: 6, n: 8, k: 32, bs: 32 },
      { m: 13, n: 21, k: 70, bs: 32 }, // a padded 6-row block, a partial panel, a partial last block
      { m: 270, n: 24, k: 128, bs: 64 },
      { m: 5, n: 3, k: 16, bs: 16 },
      { m: 7, n: 9, k: 4304 % 256, bs: 32 }, // SigLIP's 4304 ends in a half block
    ]) {
      for (const kind of ["q8", "q4"] as const) {
        if (kind === "q4" && bs % 32 !== 0) continue; // the kernel's int4 blocks are multiples of 32
        for (const flags of [0, 1, 2]) {
          it(`${kind} W[${n}, ${k}] (blocks of ${bs}), A[${m}, ${k}]${["", ", + C", ", gelu"][flags]}`, () => {
            const lda = k + 3;
            const ldc = n + 5;
            const a = uniform(m * lda, m + n + k);
            for (let i = 0; i < m; i++) a[i * lda] *= 4; // one larger value per row: its block's scale follows it
            const c0 = uniform(m * ldc, 9);
            const bias = uniform(Math.ceil(n / 8) * 8, 8);
            const { dense, m: wm } = weights(kind, n, k, bs, 3);
            const c = put(kernel, c0);
            const scratch = gemmScratch(m, k, bs);
            ex.gemmQ(c, ldc, put(kernel, a), lda, wm.codes, wm.scales, KIND[kind], bs, put(kernel, bias), m, n, k, flags, heap.alloc(scratch.work), heap.alloc(scratch.panel), k);
            const got = heap.f32(c, m * ldc).slice();
            const rows: number[] = [];
            const want: number[] = [];
            for (let i = 0; i < m; i++) {
              const amax = new Float64Array(Math.ceil(k / bs)); // per block of this row
              for (let t = 0; t < k; t++) amax[Math.floor(t / bs)] = Math.max(amax[Math.floor(t / bs)], Math.abs(a[i * lda + t]));
              for (let j = 0; j < n; j++) {
                let s = bias[j];
                let rounding = 0;
                let absAW = 0;
                for (let t = 0; t < k; t++) {
                  s += a[i * lda + t] * dense[j * k + t];
                  rounding += 0.5 * (amax[Math.floor(t / bs)] / levels) * Math.abs(dense[j * k + t]);
                  absAW += Math.abs(a[i * lda + t] * dense[j * k + t]);
                }
                let bound = rounding + 1e-5 * (absAW + Math.abs(bias[j]));
                if (flags === 2) bound *= Math.max(1.2, Math.abs(dgelu(s)) * 1.2);
                const ref = flags === 2 ? gelu(s) : s + (flags === 1 ? c0[i * ldc + j] : 0);
                const v = got[i * ldc + j];
                if (!(Math.abs(v - ref) <= bound)) expect.fail(`C[${i}][${j}] = ${v}, reference ${ref}: error ${Math.abs(v - ref)} > bound ${bound}`);
                want.push(ref);
                rows.push(v);
              }
              // Columns past n are never written.
              expect(Array.from(got.subarray(i * ldc + n, (i + 1) * ldc))).toEqual(Array.from(c0.subarray(i * ldc + n, (i + 1) * ldc)));
            }
            expect(nmse(rows, want).nmse).toBeLessThan(1e-8 * (16383 / levels) ** 2);
          });
        }
      }
    }

    for (const kind of ["q8", "q4"] as const) {
      it(`${kind}: a slice of W (rows [8, 16), columns [32, 96) of [24, 128]) reads only that block`, () => {
        const [n, k, bs, m] = [24, 128, 32, 7];
        const { dense, m: matrix } = weights(kind, n, k, bs, 43);
        const s = sliceOf(matrix, 8, 8, 32, 64);
        const a = uniform(m * 64, 44);
        const c = heap.alloc(4 * m * 8);
        const scratch = gemmScratch(m, 64, bs);
        ex.gemmQ(c, 8, put(kernel, a), 64, s.w, s.scales, s.kind, s.blockSize, 0, m, s.n, s.k, 0, heap.alloc(scratch.work), heap.alloc(scratch.panel), s.kRow);
        const got = Array.from(heap.f32(c, m * 8));
        const want: number[] = [];
        for (let i = 0; i < m; i++) for (let j = 0; j < 8; j++) {
          let acc = 0;
          for (let t = 0; t < 64; t++) acc += a[i * 64 + t] * dense[(8 + j) * k + 32 + t];
          want.push(acc);
        }
        expect(nmse(got, want).nmse).toBeLessThan(1e-8 * (16383 / levels) ** 2);
      });
    }

    it("a zero row gives bias only (scale 0, no division by zero)", () => {
      const [n, k, bs, m] = [8, 64, 32, 2];
      const { m: wm } = weights("q8", n, k, bs, 7);
      const a = new Float32Array(m * k);
      a.set(uniform(k, 5), k); // row 0 zero, row 1 not
      const bias = uniform(8, 6);
      const c = heap.alloc(4 * m * n);
      const scratch = gemmScratch(m, k, bs);
      ex.gemmQ(c, n, put(kernel, a), k, wm.codes, wm.scales, KIND.q8, bs, put(kernel, bias), m, n, k, 0, heap.alloc(scratch.work), heap.alloc(scratch.panel), k);
      expect(Array.from(heap.f32(c, n))).toEqual(Array.from(bias));
    });
  });
}
