// Float32 matrix products for the prefill-shaped work (the vision encoder): C[m, n] = A[m, k] · B[k, n]
// + bias[n], optionally through gelu, optionally added to the old C. B is packed once (packB) into panels of 8 columns, panel after panel, each
// holding B[0..k)[8p, 8p + 8) row after row and zero-padded past n; A is repacked on every call into blocks of
// 6 rows interleaved column by column. The inner loop then reads 8 consecutive floats of B and 6 consecutive
// floats of A per step from two pointers: a 6 × 8 tile of accumulators (12 vectors) stays in registers, and
// with relaxed SIMD every step is 12 fused multiply-adds (the core's whole 128-bit FMA throughput).
import { madd } from "./simd";
import { geluv } from "./ops";

/** gemm flags: add the result to the old C (residual connections); apply gelu_tanh to A·B + bias first. */
const ACCUMULATE = 1;
const GELU = 2;

const NR = 8; // columns per panel
// Spill tile for a panel that sticks out past n (one row of 8 floats).
const TILE = memory.data(NR * 4, 16);

/**
 * dst ← B packed into panels, where B[r][c] = src[r·rowStride + c·colStride] (strides in floats) for r < k,
 * c < n. dst needs 4 · k · ceil(n / 8) · 8 bytes. Weights stored [k, n] row-major pack with (n, 1); a
 * matrix stored [n, k] (one output per row, or keys as B = Kᵀ) with (1, k-stride).
 */
export function packB(dst: usize, src: usize, rowStride: i32, colStride: i32, k: i32, n: i32): void {
  for (let p = 0; p < n; p += NR) {
    const cols = min(NR, n - p);
    for (let r = 0; r < k; r++) {
      const row = src + ((<usize>r * <usize>rowStride + <usize>p * <usize>colStride) << 2);
      for (let j = 0; j < NR; j++) store<f32>(dst + (<usize>j << 2), j < cols ? load<f32>(row + ((<usize>j * <usize>colStride) << 2)) : 0);
      dst += NR << 2;
    }
  }
}

/** Writes one 8-wide row of a tile: + bias, then gelu and/or + the old C per `flags`, only the first `cols` columns. */
// @ts-ignore: decorator
@inline export function put(c: usize, lo: v128, hi: v128, bias: usize, flags: i32, cols: i32): void {
  if (bias) {
    lo = f32x4.add(lo, v128.load(bias));
    hi = f32x4.add(hi, v128.load(bias, 16));
  }
  if (flags & GELU) {
    lo = geluv(lo);
    hi = geluv(hi);
  }
  const acc = (flags & ACCUMULATE) != 0;
  if (cols == NR) {
    if (acc) {
      lo = f32x4.add(lo, v128.load(c));
      hi = f32x4.add(hi, v128.load(c, 16));
    }
    v128.store(c, lo);
    v128.store(c, hi, 16);
    return;
  }
  v128.store(TILE, lo);
  v128.store(TILE, hi, 16);
  for (let j = 0; j < cols; j++) {
    const at = c + (<usize>j << 2);
    store<f32>(at, acc ? load<f32>(at) + load<f32>(TILE + (<usize>j << 2)) : load<f32>(TILE + (<usize>j << 2)));
  }
}

/** A's rows [i, i + 6) for i = 0, 6, … interleaved: dst[block][k][6]. Rows past the last full block are left out. */
export function packA(dst: usize, a: usize, ldaB: usize, m: i32, k: i32): void {
  for (let i = 0; i + 6 <= m; i += 6) {
    const r = a + <usize>i * ldaB;
    const end = r + (<usize>k << 2);
    for (let p = r; p < end; p += 4) {
      store<f32>(dst, load<f32>(p));
      store<f32>(dst, load<f32>(p + ldaB), 4);
      store<f32>(dst, load<f32>(p + 2 * ldaB), 8);
      store<f32>(dst, load<f32>(p + 3 * ldaB), 12);
      store<f32>(dst, load<f32>(p + 4 * ldaB), 16);
      store<f32>(dst, load<f32>(p + 5 * ldaB), 20);
      dst += 24;
    }
  }
}

/** Six packed rows of A (ap[k][6]) × one panel: C rows ldc bytes apart. */
// @ts-ignore: decorator
@inline function tile6(c: usize, ldc: usize, ap: usize, b: usize, k: i32, bias: usize, flags: i32, cols: i32): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  let c40 = f32x4.splat(0), c41 = f32x4.splat(0), c50 = f32x4.splat(0), c51 = f32x4.splat(0);
  const end = ap + <usize>k * 24;
  while (ap < end) {
    const b0 = v128.load(b);
    const b1 = v128.load(b, 16);
    let x = v128.load32_splat(ap);
    c00 = madd(x, b0, c00);
    c01 = madd(x, b1, c01);
    x = v128.load32_splat(ap, 4);
    c10 = madd(x, b0, c10);
    c11 = madd(x, b1, c11);
    x = v128.load32_splat(ap, 8);
    c20 = madd(x, b0, c20);
    c21 = madd(x, b1, c21);
    x = v128.load32_splat(ap, 12);
    c30 = madd(x, b0, c30);
    c31 = madd(x, b1, c31);
    x = v128.load32_splat(ap, 16);
    c40 = madd(x, b0, c40);
    c41 = madd(x, b1, c41);
    x = v128.load32_splat(ap, 20);
    c50 = madd(x, b0, c50);
    c51 = madd(x, b1, c51);
    b += NR << 2;
    ap += 24;
  }
  put(c, c00, c01, bias, flags, cols);
  put(c + ldc, c10, c11, bias, flags, cols);
  put(c + 2 * ldc, c20, c21, bias, flags, cols);
  put(c + 3 * ldc, c30, c31, bias, flags, cols);
  put(c + 4 * ldc, c40, c41, bias, flags, cols);
  put(c + 5 * ldc, c50, c51, bias, flags, cols);
}

/** Four rows of A (unpacked, lda bytes apart) × one panel: the usual leftover of 6-row blocks (256 = 42·6 + 4). */
// @ts-ignore: decorator
@inline function tile4(c: usize, ldc: usize, a: usize, lda: usize, b: usize, k: i32, bias: usize, flags: i32, cols: i32): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  const a1 = a + lda, a2 = a1 + lda, a3 = a2 + lda;
  const end = <usize>k << 2;
  for (let i: usize = 0; i < end; i += 4) {
    const b0 = v128.load(b);
    const b1 = v128.load(b, 16);
    b += NR << 2;
    let x = v128.load32_splat(a + i);
    c00 = madd(x, b0, c00);
    c01 = madd(x, b1, c01);
    x = v128.load32_splat(a1 + i);
    c10 = madd(x, b0, c10);
    c11 = madd(x, b1, c11);
    x = v128.load32_splat(a2 + i);
    c20 = madd(x, b0, c20);
    c21 = madd(x, b1, c21);
    x = v128.load32_splat(a3 + i);
    c30 = madd(x, b0, c30);
    c31 = madd(x, b1, c31);
  }
  put(c, c00, c01, bias, flags, cols);
  put(c + ldc, c10, c11, bias, flags, cols);
  put(c + 2 * ldc, c20, c21, bias, flags, cols);
  put(c + 3 * ldc, c30, c31, bias, flags, cols);
}

/** One row of A × one panel (the rows left over after the 6- and 4-row tiles). */
// @ts-ignore: decorator
@inline function tile1(c: usize, a: usize, b: usize, k: i32, bias: usize, flags: i32, cols: i32): void {
  let lo = f32x4.splat(0), hi = f32x4.splat(0);
  const end = <usize>k << 2;
  for (let i: usize = 0; i < end; i += 4) {
    const x = v128.load32_splat(a + i);
    lo = madd(x, v128.load(b), lo);
    hi = madd(x, v128.load(b, 16), hi);
    b += NR << 2;
  }
  put(c, lo, hi, bias, flags, cols);
}

/**
 * C's columns [p, p + cols) for all m rows = A · one packed panel: the 6-row tiles read A repacked in `work`,
 * the leftover rows read A as it is. cp = C + p; bias8 = bias + p (or 0).
 */
// @ts-ignore: decorator
@inline export function panelRows(cp: usize, ldcB: usize, work: usize, a: usize, ldaB: usize, panel: usize, m: i32, k: i32, bias8: usize, flags: i32, cols: i32): void {
  const full = m - m % 6;
  for (let i = 0; i < full; i += 6) tile6(cp + <usize>i * ldcB, ldcB, work + <usize>i * (<usize>k << 2), panel, k, bias8, flags, cols);
  let i = full;
  if (m - i >= 4) {
    tile4(cp + <usize>i * ldcB, ldcB, a + <usize>i * ldaB, ldaB, panel, k, bias8, flags, cols);
    i += 4;
  }
  for (; i < m; i++) tile1(cp + <usize>i * ldcB, a + <usize>i * ldaB, panel, k, bias8, flags, cols);
}

/**
 * C[m, n] = act(A[m, k] · B + bias) (+ the old C with flags & 1), act = gelu_tanh with flags & 2, else identity.
 * lda / ldc: row strides of A and C in floats; bp: B packed by packB; bias: 0 or f32[ceil(n / 8) · 8]
 * (zero-padded); work: scratch for A repacked, 4 · k · m bytes.
 */
export function gemm(c: usize, ldc: i32, a: usize, lda: i32, bp: usize, bias: usize, m: i32, n: i32, k: i32, flags: i32, work: usize): void {
  const ldcB = <usize>ldc << 2;
  const ldaB = <usize>lda << 2;
  packA(work, a, ldaB, m, k);
  for (let p = 0; p < n; p += NR) {
    const panel = bp + ((<usize>p * <usize>k) << 2);
    panelRows(c + (<usize>p << 2), ldcB, work, a, ldaB, panel, m, k, bias ? bias + (<usize>p << 2) : 0, flags, min(NR, n - p));
  }
}
