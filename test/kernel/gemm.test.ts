/**
 * The vision path's matrix product and row ops (kernels/assembly/gemm.ts, encoder.ts) against float64
 * references: every tile path (6-row blocks and leftover rows, full and partial 8-column panels), strided A
 * and C, bias, the residual and gelu epilogues, packB's two orientations, LayerNorm and scaled softmax.
 */
import { describe, expect, it } from "vitest";
import { kernelOf, nmse, put, uniform } from "./helpers.ts";

const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

describe("kernel GEMM and encoder rows (plain-SIMD build)", async () => {
  const kernel = (await kernelOf("simd"))!;
  const ex = kernel.exports;
  const heap = kernel.heap;
  const read = (at: number, n: number) => heap.f32(at, n).slice();

  /** B[k, n] (dense, row-major) packed by the host into gemm's panels, and its bias padded to 8 (0: none). */
  function packed(b: Float32Array, k: number, n: number, bias: Float32Array | null): { b: number; bias: number } {
    const cols = Math.ceil(n / 8) * 8;
    const dst = new Float32Array(k * cols);
    for (let c = 0; c < n; c++) for (let r = 0; r < k; r++) dst[(c >> 3) * 8 * k + r * 8 + (c & 7)] = b[r * n + c];
    const padded = new Float32Array(cols);
    if (bias) padded.set(bias);
    return { b: put(kernel, dst), bias: bias ? put(kernel, padded) : 0 };
  }

  /** C = A·B (+ bias) (+ C0) (gelu) in float64; A[m, k] with row stride lda, B[k, n] dense. */
  function reference(a: Float32Array, lda: number, b: Float32Array, m: number, n: number, k: number, bias: Float32Array | null, c0: Float32Array | null, ldc: number, g: boolean): number[] {
    const out: number[] = [];
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = bias ? bias[j] : 0;
        for (let t = 0; t < k; t++) s += a[i * lda + t] * b[t * n + j];
        if (c0) s += c0[i * ldc + j];
        out.push(g ? gelu(s) : s);
      }
    }
    return out;
  }

  for (const { m, n, k } of [
    { m: 6, n: 8, k: 5 }, // one tile
    { m: 13, n: 21, k: 37 }, // leftover rows and a partial panel
    { m: 256, n: 72, k: 64 },
    { m: 5, n: 3, k: 1 }, // no full row block: a 4-row tile and one row
    { m: 10, n: 16, k: 9 }, // a 6-row block and a 4-row tile
  ]) {
    for (const flags of [0, 1, 2]) {
      it(`C[${m}, ${n}] = A[${m}, ${k}] · B${flags === 1 ? " + C (residual)" : flags === 2 ? ", gelu" : ""}, strided A and C`, () => {
        const lda = k + 3;
        const ldc = n + 5;
        const a = uniform(m * lda, m + n + k);
        const b = uniform(k * n, 7);
        const bias = uniform(n, 8);
        const c0 = uniform(m * ldc, 9);
        const pm = packed(b, k, n, bias);
        const c = put(kernel, c0);
        ex.gemm(c, ldc, put(kernel, a), lda, pm.b, pm.bias, m, n, k, flags, heap.alloc(4 * m * k));
        const got = read(c, m * ldc);
        const rows = Array.from({ length: m }, (_, i) => Array.from(got.subarray(i * ldc, i * ldc + n))).flat();
        const want = reference(a, lda, b, m, n, k, bias, flags === 1 ? c0 : null, ldc, flags === 2);
        expect(nmse(rows, want).nmse).toBeLessThan(1e-12);
        // Columns past n are never written.
        for (let i = 0; i < m; i++) expect(Array.from(got.subarray(i * ldc + n, (i + 1) * ldc))).toEqual(Array.from(c0.subarray(i * ldc + n, (i + 1) * ldc)));
      });
    }
  }

  it("packB reads B either way round: weights [k, n] and keys as Bᵀ of [n, k] rows", () => {
    const k = 9;
    const n = 11;
    const rows = uniform(n * 4 * k, 10); // n rows of a wider matrix (row stride 4k): B[i][j] = rows[j·4k + i]
    const dense = Float32Array.from({ length: k * n }, (_, x) => rows[(x % n) * 4 * k + Math.floor(x / n)]);
    const viaKernel = heap.alloc(4 * k * 16);
    ex.packB(viaKernel, put(kernel, rows), 1, 4 * k, k, n);
    const viaHost = packed(dense, k, n, null);
    expect(read(viaKernel, k * 16)).toEqual(read(viaHost.b, k * 16));
    expect(read(viaKernel, k * 16).subarray(k * 8 + 3, k * 8 + 8)).toEqual(new Float32Array(5)); // zero padding past n
  });

  it("layerNorm: (x − mean) / sqrt(var + eps) · w + b per row, in place", () => {
    const rows = 3;
    const n = 70;
    const x = uniform(rows * n, 11).map((v, i) => 4 * v + (i % 5));
    const w = uniform(n, 12);
    const b = uniform(n, 13);
    const at = put(kernel, x);
    ex.layerNorm(at, at, put(kernel, w), put(kernel, b), rows, n, 1e-6);
    const want: number[] = [];
    for (let r = 0; r < rows; r++) {
      const row = Array.from(x.subarray(r * n, (r + 1) * n));
      const mean = row.reduce((s, v) => s + v, 0) / n;
      const v = row.reduce((s, t) => s + (t - mean) ** 2, 0) / n;
      for (let i = 0; i < n; i++) want.push(((row[i] - mean) / Math.sqrt(v + 1e-6)) * w[i] + b[i]);
    }
    expect(nmse(read(at, rows * n), want).nmse).toBeLessThan(1e-12);
  });

  it("softmaxRows: softmax(row · scale) over strided rows, in place", () => {
    const rows = 4;
    const n = 27;
    const ld = 30;
    const x = uniform(rows * ld, 14).map((v) => 20 * v);
    const at = put(kernel, x);
    ex.softmaxRows(at, ld, rows, n, 0.125);
    const got = read(at, rows * ld);
    for (let r = 0; r < rows; r++) {
      const s = Array.from(x.subarray(r * ld, r * ld + n), (v) => v * 0.125);
      const top = Math.max(...s);
      const e = s.map((v) => Math.exp(v - top));
      const sum = e.reduce((a, v) => a + v, 0);
      expect(nmse(got.subarray(r * ld, r * ld + n), e.map((v) => v / sum)).nmse).toBeLessThan(1e-12);
      expect(Array.from(got.subarray(r * ld + n, (r + 1) * ld))).toEqual(Array.from(x.subarray(r * ld + n, (r + 1) * ld)));
    }
  });
});
