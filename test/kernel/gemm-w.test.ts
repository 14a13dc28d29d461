/**
 * The GEMM over weights kept as stored (kernels/assembly/gemm-w.ts): C = A · Wᵀ for W[n, k] float32 or
 * MatMulNBits int8/int4 blocks, dequantised panel by panel, against float64 references of the dequantised
 * weights, over every tile path, block sizes 16/32/64, k not a multiple of the block, bias and flags, both builds.
 */
import { describe, expect, it } from "vitest";
import { sliceOf, toKernelCodes, type KernelMatrix } from "../../shared/kernel/matrix.ts";
import { codeAt, kernelOf, nmse, put, randomNBits, uniform } from "./helpers.ts";

const KIND = { f32: 0, q8: 1, q4: 2 } as const;
const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

for (const flavor of ["simd", "relaxed"] as const) {
  describe(`gemmW (${flavor} build)`, async () => {
    const kernel = (await kernelOf(flavor))!;
    it("the build runs on this engine", () => expect(kernel?.flavor).toBe(flavor));
    const ex = kernel.exports;
    const heap = kernel.heap;

    for (const { m, n, k, bs } of [
      { m: 6, n: 8, k: 32, bs: 32 },
      { m: 13, n: 21, k: 70, bs: 32 }, // leftover rows, a partial panel, a partial last block
      { m: 270, n: 24, k: 128, bs: 64 },
      { m: 5, n: 3, k: 16, bs: 16 },
    ]) {
      for (const kind of ["f32", "q8", "q4"] as const) {
        for (const flags of [0, 1, 2]) {
          it(`${kind} W[${n}, ${k}] (blocks of ${bs}), A[${m}, ${k}]${["", ", + C", ", gelu"][flags]}`, () => {
            const lda = k + 3;
            const ldc = n + 5;
            const a = uniform(m * lda, m + n + k);
            const c0 = uniform(m * ldc, 9);
            const bias = uniform(Math.ceil(n / 8) * 8, 8);
            // Dense dequantised W[n, k] for the reference, and the stored form for the kernel.
            const dense = new Float64Array(n * k);
            let w: number;
            let scales = 0;
            if (kind === "f32") {
              const f = uniform(n * k, 5);
              dense.set(f);
              w = put(kernel, f);
            } else {
              const bits = kind === "q8" ? 8 : 4;
              const { codes, scales: s } = randomNBits(n, k, bits, bs, 3);
              const blocks = Math.ceil(k / bs);
              for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) dense[r * k + c] = (codeAt(codes, k, bits, bs, r, c) - (1 << (bits - 1))) * s[r * blocks + Math.floor(c / bs)];
              const stored = codes.slice();
              toKernelCodes(bits, stored);
              w = heap.alloc(stored.length);
              heap.u8(w, stored.length).set(stored);
              scales = put(kernel, s);
            }
            const c = put(kernel, c0);
            const biasAt = put(kernel, bias);
            ex.gemmW(c, ldc, put(kernel, a), lda, w, scales, KIND[kind], bs, biasAt, m, n, k, flags, heap.alloc(4 * m * k), heap.alloc(4 * 8 * k), k);
            const got = heap.f32(c, m * ldc).slice();
            const rows: number[] = [];
            const want: number[] = [];
            for (let i = 0; i < m; i++) {
              for (let j = 0; j < n; j++) {
                let s = bias[j];
                for (let t = 0; t < k; t++) s += a[i * lda + t] * dense[j * k + t];
                if (flags === 1) s += c0[i * ldc + j];
                want.push(flags === 2 ? gelu(s) : s);
                rows.push(got[i * ldc + j]);
              }
              // Columns past n are never written.
              expect(Array.from(got.subarray(i * ldc + n, (i + 1) * ldc))).toEqual(Array.from(c0.subarray(i * ldc + n, (i + 1) * ldc)));
            }
            expect(nmse(rows, want).nmse).toBeLessThan(1e-12);
          });
        }
      }
    }

    for (const kind of ["f32", "q8", "q4"] as const) {
      it(`${kind}: a slice of W (rows [8, 16), columns [32, 96) of [24, 128]) reads only that block`, () => {
        const [n, k, bs, m] = [24, 128, 32, 7];
        const dense = new Float64Array(n * k);
        let matrix: KernelMatrix;
        if (kind === "f32") {
          const f = uniform(n * k, 41);
          dense.set(f);
          matrix = { kind, n, k, w: put(kernel, f) };
        } else {
          const bits = kind === "q8" ? 8 : 4;
          const { codes, scales } = randomNBits(n, k, bits, bs, 43);
          for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) dense[r * k + c] = (codeAt(codes, k, bits, bs, r, c) - (1 << (bits - 1))) * scales[r * (k / bs) + Math.floor(c / bs)];
          const stored = codes.slice();
          toKernelCodes(bits, stored);
          const at = heap.alloc(stored.length);
          heap.u8(at, stored.length).set(stored);
          matrix = { kind, n, k, blockSize: bs, codes: at, scales: put(kernel, scales) };
        }
        const s = sliceOf(matrix, 8, 8, 32, 64);
        const a = uniform(m * 64, 44);
        const c = heap.alloc(4 * m * 8);
        ex.gemmW(c, 8, put(kernel, a), 64, s.w, s.scales, s.kind, s.blockSize, 0, m, s.n, s.k, 0, heap.alloc(4 * m * 64), heap.alloc(4 * 8 * 64), s.kRow);
        const got = Array.from(heap.f32(c, m * 8));
        const want: number[] = [];
        for (let i = 0; i < m; i++) for (let j = 0; j < 8; j++) {
          let acc = 0;
          for (let t = 0; t < 64; t++) acc += a[i * 64 + t] * dense[(8 + j) * k + 32 + t];
          want.push(acc);
        }
        expect(nmse(got, want).nmse).toBeLessThan(1e-12);
      });
    }
  });
}
