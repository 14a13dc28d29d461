/**
 * The int8 × int8 GEMM (kernels/assembly/gemm-q8.ts: gemmQ8A8 in the form fullDot picks, and the split form
 * forced, gemmQ8A8Split): C = A · Wᵀ for MatMulNBits int8 W with A quantised per row and chunk of 32 k to ±127
 * at run time (gemm-q4.ts's quantisation), against a scalar reference that does the same quantisation, the same
 * exact integer sums (codes − 128) and the same float32 scale arithmetic in the same order (Math.fround at
 * every step). Stated bounds:
 *   - flags 0 (plain) and 1 (+ C): every output bit-identical to the reference, in both builds and forms;
 *   - flags 2 (gelu_tanh, the kernel's approximation): |C − gelu(reference)| ≤ 1e-5 · (1 + |reference|);
 *   - against the float64 product of A (unquantised) and the dequantised W: NMSE < 1e-8 · (16383 / 127)²,
 *     the bound gemm-q4.test.ts states for its levels.
 * Over 6-row tiles and a padded last one, partial 8-column panels, blocks of 16 (gemmSlice: to gemm-q.ts) /
 * 32 / 64 / 128, k tails, bias, slices of W, the extreme codes (−128, 127) against ±127 activations and a
 * zero row; and shared/kernel/gemm.ts's routing: "int8-a8" sends int8 weights here, "int8" to gemm-q.ts, and
 * blocks of 16 go to gemm-q.ts under both (bit for bit its output). Node's V8 has no AVX-VNNI: there fullDot
 * is false and both exports run the split form; the full form is checked against the split one, bit for bit,
 * in workerd (test/kernel/workerd.test.ts, through kernels/bench-worker/gemm-bench.ts, which throws where they
 * differ).
 */
import { describe, expect, it } from "vitest";
import { sliceOf, toKernelCodes } from "../../shared/kernel/matrix.ts";
import { gemmScratch, gemmSlice, type GemmCompute } from "../../shared/kernel/gemm.ts";
import { codeAt, kernelOf, put, randomNBits, uniform } from "./helpers.ts";
import { expectAgainstReference, gemmA8Reference } from "./gemm-a8-reference.ts";

const Q8 = 1; // W_Q8 of kernels/assembly/gemm-w.ts

for (const [flavor, fn] of [["simd", "gemmQ8A8"], ["relaxed", "gemmQ8A8"], ["relaxed", "gemmQ8A8Split"]] as const) {
  describe(`${fn} (${flavor} build)`, async () => {
    const kernel = (await kernelOf(flavor))!;
    it("the build runs on this engine", () => expect(kernel?.flavor).toBe(flavor));
    const heap = kernel.heap;
    const gemm = kernel.exports[fn];

    /** int8 W stored for the kernel (MatMulNBits codes, top bit flipped), its readers and its dense form. */
    const weights = (n: number, k: number, bs: number, seed: number, codeOf?: (j: number, t: number) => number) => {
      const { codes, scales } = randomNBits(n, k, 8, bs, seed);
      const blocks = Math.ceil(k / bs);
      if (codeOf) for (let j = 0; j < n; j++) for (let t = 0; t < blocks * bs; t++) codes[j * blocks * bs + t] = codeOf(j, t);
      const code = (j: number, t: number) => codeAt(codes, blocks * bs, 8, bs, j, t); // the stored block's tail too
      const scale = (j: number, b: number) => scales[j * blocks + b];
      const dense = new Float64Array(n * k);
      for (let j = 0; j < n; j++) for (let t = 0; t < k; t++) dense[j * k + t] = (code(j, t) - 128) * scale(j, Math.floor(t / bs));
      const stored = codes.slice();
      toKernelCodes(8, stored);
      const w = heap.alloc(stored.length);
      heap.u8(w, stored.length).set(stored);
      const matrix = { kind: "q8" as const, n, k, blockSize: bs, codes: w, scales: put(kernel, scales) };
      return { code, scale, dense, matrix };
    };

    const call = (m: number, k: number, bs: number, c: number, ldc: number, a: number, lda: number, mat: { n: number; codes: number; scales: number }, bias: number, flags: number, kRow = k) => {
      const scratch = gemmScratch(m, k, bs);
      gemm(c, ldc, a, lda, mat.codes, mat.scales, Q8, bs, bias, m, mat.n, k, flags, heap.alloc(scratch.work), heap.alloc(scratch.panel), kRow);
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
          call(m, k, bs, c, ldc, put(kernel, a), lda, matrix, put(kernel, bias), flags);
          const got = heap.f32(c, m * ldc).slice();
          const acc = gemmA8Reference(a, lda, m, k, code, scale, n, bs, 128);
          expectAgainstReference(got, acc, c0, bias, dense, a, lda, m, n, k, ldc, flags);
        });
      }
    }

    it("extreme codes (−128, 127, 0, −1, both signs of g) against activations at ±127, blocks of 32", () => {
      const [n, k, bs, m] = [16, 96, 32, 8];
      const pattern = [0, 255, 128, 127, 1, 254, 129, 0, 255, 255, 0, 0];
      const { code, scale, matrix } = weights(n, k, bs, 21, (j, t) => pattern[(j * 5 + t * 3) % pattern.length]);
      const a = Float32Array.from({ length: m * k }, (_, i) => ((i * 7) % 5 < 2 ? -1 : 1) * (i % 11 === 0 ? 0.5 : 1));
      const c = heap.alloc(4 * m * n);
      call(m, k, bs, c, n, put(kernel, a), k, matrix, 0, 0);
      expect(Array.from(heap.f32(c, m * n))).toEqual(Array.from(gemmA8Reference(a, k, m, k, code, scale, n, bs, 128)));
    });

    it("a slice of W (rows [8, 16), columns [64, 192) of [24, 256], blocks of 64) reads only that block", () => {
      const [n, k, bs, m] = [24, 256, 64, 7];
      const { code, scale, matrix } = weights(n, k, bs, 43);
      const s = sliceOf(matrix, 8, 8, 64, 128);
      const a = uniform(m * 128, 44);
      const c = heap.alloc(4 * m * 8);
      const scratch = gemmScratch(m, 128, bs);
      gemm(c, 8, put(kernel, a), 128, s.w, s.scales, s.kind, s.blockSize, 0, m, s.n, s.k, 0, heap.alloc(scratch.work), heap.alloc(scratch.panel), s.kRow);
      const want = gemmA8Reference(a, 128, m, 128, (j, t) => code(8 + j, 64 + t), (j, b) => scale(8 + j, 1 + b), 8, bs, 128);
      expect(Array.from(heap.f32(c, m * 8))).toEqual(Array.from(want));
    });

    it("fullDot: 0 in the plain build; in the relaxed one the same on every call, and only where wideDot holds", () => {
      const full = [kernel.exports.fullDot(), kernel.exports.fullDot()].map(Number);
      if (flavor === "simd") expect(full).toEqual([0, 0]);
      else expect([[0, 0], [1, 1]]).toContainEqual(full);
      if (full[0] === 1) expect(Number(kernel.exports.wideDot())).toBe(1);
    });

    it("gemmSlice: int8 weights here under int8-a8 only; blocks of 16 (not whole chunks) to gemm-q.ts, int4 too", () => {
      const [m, n, k] = [9, 12, 96];
      /** C for one W (kind, blocks of bs) and A, through gemmSlice(compute), or gemm-q.ts, or this export. */
      const product = (via: GemmCompute | "gemmQ" | "here", bs: number, kind: "q8" | "q4") => {
        const { codes, scales } = randomNBits(n, k, kind === "q8" ? 8 : 4, bs, 5);
        if (kind === "q8") toKernelCodes(8, codes);
        const w = heap.alloc(codes.length);
        heap.u8(w, codes.length).set(codes);
        const s = sliceOf({ kind, n, k, blockSize: bs, codes: w, scales: put(kernel, scales) }, 0, n, 0, k);
        const a = put(kernel, uniform(m * k, 6));
        const c = heap.alloc(4 * m * n);
        const scratch = gemmScratch(m, k, bs);
        const [wk, pn] = [heap.alloc(scratch.work), heap.alloc(scratch.panel)];
        if (via === "gemmQ" || via === "here") (via === "here" ? gemm : kernel.exports.gemmQ)(c, n, a, k, s.w, s.scales, s.kind, bs, 0, m, n, k, 0, wk, pn, k);
        else gemmSlice(kernel, via, c, n, a, k, s, 0, m, 0, wk, pn);
        return Array.from(heap.f32(c, m * n));
      };
      expect(product("int8-a8", 32, "q8")).toEqual(product("here", 32, "q8"));
      expect(product("here", 32, "q8")).not.toEqual(product("gemmQ", 32, "q8")); // int8 against int16 activations
      expect(product("int8", 32, "q8")).toEqual(product("gemmQ", 32, "q8"));
      expect(product("int8-a8", 16, "q8")).toEqual(product("gemmQ", 16, "q8"));
      expect(product("int8", 16, "q4")).toEqual(product("gemmQ", 16, "q4"));
    });

    it("a zero row gives bias only (scale 0, no division by zero)", () => {
      const [n, k, bs, m] = [8, 64, 32, 2];
      const { matrix } = weights(n, k, bs, 7);
      const a = new Float32Array(m * k);
      a.set(uniform(k, 5), k); // row 0 zero, row 1 not
      const bias = uniform(8, 6);
      const c = heap.alloc(4 * m * n);
      call(m, k, bs, c, n, put(kernel, a), k, matrix, put(kernel, bias), 0);
      expect(Array.from(heap.f32(c, n))).toEqual(Array.from(bias));
    });
  });
}
