// Float32 matrix products against weights kept as stored, one output per row: C[m, n] = A[m, k] · Wᵀ (+ bias),
// W[n, k] float32, or the converter's MatMulNBits blocks (int8 codes stored signed, int4 nibbles with zero point
// 8; one f32 scale per block of `bs` values along k). Each 8-row panel of W is turned into gemm's packed panel
// layout (dequantised for int8/int4, exactly as onnxruntime's MatMulNBits accuracy_level 0 dequantises) in a
// scratch of 8 · k floats just before it is used, so no widened copy of a matrix is ever held; the panel work
// is n · k per call against m · n · k multiply-adds.
import { packA, panelRows } from "./gemm";

/** Weight kinds: float32, int8 blocks, int4 blocks. */
export const W_F32 = 0;
export const W_Q8 = 1;
export const W_Q4 = 2;

const NR = 8;

/** panel[kk][j] = W[p + j][kk] (dequantised), zero for j ≥ cols; rows of W are `kRow` values long. */
function fillPanel(panel: usize, w: usize, scales: usize, kind: i32, bs: i32, p: i32, cols: i32, k: i32, kRow: i32): void {
  if (cols < NR) memory.fill(panel, 0, (<usize>k * NR) << 2);
  const blocks = (kRow + bs - 1) / bs; // blocks per stored row
  const used = (k + bs - 1) / bs; // blocks this product reads
  for (let j = 0; j < cols; j++) {
    const r = p + j;
    const out = panel + (<usize>j << 2);
    if (kind == W_F32) {
      const row = w + ((<usize>r * <usize>kRow) << 2);
      for (let kk = 0; kk < k; kk++) store<f32>(out + ((<usize>kk * NR) << 2), load<f32>(row + (<usize>kk << 2)));
      continue;
    }
    const blob: usize = kind == W_Q8 ? <usize>bs : <usize>bs >> 1;
    for (let b = 0; b < used; b++) {
      const s = load<f32>(scales + ((<usize>r * <usize>blocks + <usize>b) << 2));
      const codes = w + (<usize>r * <usize>blocks + <usize>b) * blob;
      const k0 = b * bs;
      const k1 = min(k, k0 + bs);
      if (kind == W_Q8) {
        for (let kk = k0; kk < k1; kk++) store<f32>(out + ((<usize>kk * NR) << 2), <f32>load<i8>(codes + <usize>(kk - k0)) * s);
      } else {
        for (let kk = k0; kk < k1; kk++) {
          const t = kk - k0;
          const nib = (<i32>load<u8>(codes + (<usize>t >> 1)) >> ((t & 1) << 2)) & 15;
          store<f32>(out + ((<usize>kk * NR) << 2), <f32>(nib - 8) * s);
        }
      }
    }
  }
}

/**
 * C[m, n] = act(A[m, k] · Wᵀ + bias) (+ the old C with flags & 1; gelu_tanh with flags & 2), W per `kind` at `w`
 * (int8/int4: codes at `w`, scales f32[n · blocks] at `scales`). lda / ldc in floats; bias 0 or
 * f32[ceil(n / 8) · 8]; work: 4 · m · k bytes (A repacked); panel: 4 · 8 · k bytes. W's stored rows are
 * `kRow` ≥ k values long: the product reads the first k of each (a slice of W's columns starting at `w` /
 * `scales`, on a block boundary for int8/int4).
 */
export function gemmW(c: usize, ldc: i32, a: usize, lda: i32, w: usize, scales: usize, kind: i32, bs: i32, bias: usize, m: i32, n: i32, k: i32, flags: i32, work: usize, panel: usize, kRow: i32): void {
  const ldcB = <usize>ldc << 2;
  const ldaB = <usize>lda << 2;
  packA(work, a, ldaB, m, k);
  for (let p = 0; p < n; p += NR) {
    const cols = min(NR, n - p);
    fillPanel(panel, w, scales, kind, bs, p, cols, k, kRow);
    panelRows(c + (<usize>p << 2), ldcB, work, a, ldaB, panel, m, k, bias ? bias + (<usize>p << 2) : 0, flags, cols);
  }
}
