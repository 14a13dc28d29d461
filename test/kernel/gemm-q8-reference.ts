/**
 * The scalar reference of kernels/assembly/gemm-q8.ts (test/kernel/gemm-q8.test.ts): A quantised per row and
 * chunk of 32 k to ±127 (round half to even, as f32x4.nearest), exact integer sums of qA · (code − 128) per
 * chunk, and the kernel's float32 steps in its order (Math.fround at every step).
 */
const CHUNK = 32;
const f = Math.fround;

/** Round half to even (f32x4.nearest). */
function nearest(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The kernel's float32 accumulator (before bias and flags) of every C[i][j] (m × n, row-major), from A (m rows,
 * lda apart, k values), the MatMulNBits codes 0..255 of W (zero point 128) and its block scales.
 */
export function gemmQ8Reference(a: Float32Array, lda: number, m: number, k: number, codes: (j: number, t: number) => number, scale: (j: number, b: number) => number, n: number, bs: number): Float32Array {
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
        for (let t = h * CHUNK; t < (h + 1) * CHUNK; t++) dot += q[t] * (codes(j, t) - 128);
        acc = f(acc + f(dot * f(scale(j, Math.floor((h * CHUNK) / bs)) * sA[h])));
      }
      out[i * n + j] = acc;
    }
  }
  return out;
}
