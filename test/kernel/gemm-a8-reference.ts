/**
 * The scalar reference of the int8-activation GEMMs, kernels/assembly/gemm-q4.ts (int4 weights, zero point 8) and
 * gemm-q8.ts (int8 weights, zero point 128), for test/kernel/gemm-q4.test.ts and gemm-q8.test.ts: A quantised per
 * row and chunk of 32 k to ±127 (round half to even, as f32x4.nearest), exact integer sums of qA · (code − zero)
 * per chunk, and the kernel's float32 steps in its order (Math.fround at every step); and the check of a kernel's
 * C against it.
 */
import { expect } from "vitest";
import { nmse } from "./helpers.ts";

const CHUNK = 32;
const f = Math.fround;
const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

/** Round half to even (f32x4.nearest). */
export function nearest(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The kernel's float32 accumulator (before bias and flags) of every C[i][j] (m × n, row-major), from A (m rows,
 * lda apart, k values), the MatMulNBits codes of W with their zero point, and its block scales.
 */
export function gemmA8Reference(a: Float32Array, lda: number, m: number, k: number, codes: (j: number, t: number) => number, scale: (j: number, b: number) => number, n: number, bs: number, zero: number): Float32Array {
  const kp = Math.ceil(k / bs) * bs;
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    const q = new Int32Array(kp);
    const sA = new Float32Array(kp / CHUNK);
    for (let h = 0; h < kp / CHUNK; h++) {
      let amax = 0;
      for (let t = h * CHUNK; t < Math.min(k, (h + 1) * CHUNK); t++) amax = Math.max(amax, Math.abs(a[i * lda + t]));
      const inv = amax > 0 ? f(127 / amax) : 0;
      sA[h] = f(amax / 127);
      for (let t = h * CHUNK; t < Math.min(k, (h + 1) * CHUNK); t++) q[t] = nearest(f(a[i * lda + t] * inv));
    }
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let h = 0; h < kp / CHUNK; h++) {
        let dot = 0;
        for (let t = h * CHUNK; t < (h + 1) * CHUNK; t++) dot += q[t] * (codes(j, t) - zero);
        acc = f(acc + f(dot * f(scale(j, Math.floor((h * CHUNK) / bs)) * sA[h])));
      }
      out[i * n + j] = acc;
    }
  }
  return out;
}

/**
 * C (m rows, ldc apart; c0 its contents before the call) against the reference accumulators `acc`: exact for flags
 * 0 (bias) and 1 (+ C), gelu within 1e-5 · (1 + |reference|); columns past n untouched; and the whole within the
 * int8 activations' error of the float product with the dense weights (`dense`, n × k).
 */
export function expectAgainstReference(got: Float32Array, acc: Float32Array, c0: Float32Array, bias: ArrayLike<number>, dense: ArrayLike<number>, a: ArrayLike<number>, lda: number, m: number, n: number, k: number, ldc: number, flags: number): void {
  const got2: number[] = [];
  const exact: number[] = [];
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      const v = got[i * ldc + j];
      const pre = f(acc[i * n + j] + bias[j]);
      const want = flags === 1 ? f(pre + c0[i * ldc + j]) : flags === 2 ? gelu(pre) : pre;
      if (flags === 2 ? !(Math.abs(v - want) <= 1e-5 * (1 + Math.abs(want))) : v !== want) expect.fail(`C[${i}][${j}] = ${v}, reference ${want}`);
      let s = bias[j];
      for (let t = 0; t < k; t++) s += a[i * lda + t] * dense[j * k + t];
      got2.push(flags === 0 ? v : pre);
      exact.push(s);
    }
    // Columns past n are never written.
    expect(Array.from(got.subarray(i * ldc + n, (i + 1) * ldc))).toEqual(Array.from(c0.subarray(i * ldc + n, (i + 1) * ldc)));
  }
  expect(nmse(got2, exact).nmse).toBeLessThan(1e-8 * (16383 / 127) ** 2);
}
