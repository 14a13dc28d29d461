// Integer matrix products against the converter's int8/int4 MatMulNBits weights, one output per row:
// C[m, n] = A[m, k] · Wᵀ (+ bias), computed as
//   C[r][c] = Σ_blocks sA[r][b] · sW[c][b] · Σ_{kk in b} qA[r][kk] · qW[c][kk]
// qA: A quantised at run time, per row and weight block, to int16 with ±16383 levels (sA = max|A[r][b]| / 16383);
// qW: the stored codes widened to int16 (int8 as stored, int4 nibbles − 8). The inner sums are exact int32 (a
// block of bs products is at most bs · 16383 · 128 < 2³¹ for bs ≤ 512), done by i32x4.dot_i16x8_s (plain SIMD,
// deterministic); both scales are applied in float32 once per block.
//
// Layouts, both built per call in caller scratch:
//   A packed  [⌈m / 6⌉ blocks of 6 rows][kp / 2 pairs][6 rows] i32 (one pair of int16 each), rows past m zero;
//   W panel   [kp / 2 pairs][8 columns] i32 (pair of int16), then its scales [blocks][8] f32,
// where kp = blocks · bs (k padded to whole blocks; A is zero there). A 6 × 8 tile then reads, per pair of k,
// 8 columns from two vectors and 6 row pairs as splats: 12 dot products into 12 int32 accumulators.
import { put } from "./gemm";
import { W_Q8 } from "./gemm-w";
import { transpose4 } from "./simd";

const NR = 8; // columns per panel
const MR = 6; // rows per tile
const LEVELS: f32 = 16383;
// The float accumulators of one 6 × 8 tile (the int32 ones fill the registers).
const FT = memory.data(MR * NR * 4, 16);

/** One row's 8 values (4 pairs, as i32 lanes) of int16 into the packed A at `dst`, pairs 24 bytes apart. */
// @ts-ignore: decorator
@inline function scatterPairs(dst: usize, q: v128): void {
  store<i32>(dst, i32x4.extract_lane(q, 0));
  store<i32>(dst, i32x4.extract_lane(q, 1), 24);
  store<i32>(dst, i32x4.extract_lane(q, 2), 48);
  store<i32>(dst, i32x4.extract_lane(q, 3), 72);
}

/**
 * Quantises rows [0, m) of A (row stride ldaB bytes, k values) into `dst` (layout above, kp values per row,
 * rows up to the next multiple of 6), block by block of `bs` values, and the block scales into
 * rs f32[⌈m / 6⌉][blocks][6] (the six rows of a tile side by side). Per block, not per row: a product over a
 * slice of k (an MLP column block, one part of a cut layer) then rounds every value exactly as the whole one.
 */
export function packQuantA(dst: usize, rs: usize, a: usize, ldaB: usize, m: i32, k: i32, bs: i32, blocks: i32): void {
  const m6 = ((m + MR - 1) / MR) * MR;
  const kp = blocks * bs;
  const blockBytes = <usize>kp * 12; // kp / 2 pairs × 6 rows × 4 bytes
  for (let r = 0; r < m6; r++) {
    const out = dst + <usize>(r / MR) * blockBytes + (<usize>(r % MR) << 2);
    const rsr = rs + <usize>(r / MR) * <usize>blocks * 24 + (<usize>(r % MR) << 2);
    if (r >= m) {
      for (let t = 0; t < kp; t += 2) store<i32>(out + <usize>(t >> 1) * 24, 0);
      for (let b = 0; b < blocks; b++) store<f32>(rsr + <usize>b * 24, 0);
      continue;
    }
    const row = a + <usize>r * ldaB;
    for (let b = 0; b < blocks; b++) {
      const k0 = b * bs;
      const k1 = min(k, k0 + bs);
      const k4 = k0 + ((k1 - k0) & ~3);
      let mx = f32x4.splat(0);
      for (let kk = k0; kk < k4; kk += 4) mx = f32x4.max(mx, f32x4.abs(v128.load(row + (<usize>kk << 2))));
      let amax = max(max(f32x4.extract_lane(mx, 0), f32x4.extract_lane(mx, 1)), max(f32x4.extract_lane(mx, 2), f32x4.extract_lane(mx, 3)));
      for (let kk = k4; kk < k1; kk++) amax = max(amax, abs(load<f32>(row + (<usize>kk << 2))));
      const inv: f32 = amax > 0 ? LEVELS / amax : 0;
      store<f32>(rsr + <usize>b * 24, amax / LEVELS);
      const vi = f32x4.splat(inv);
      let kk = k0;
      for (; kk + 8 <= k1; kk += 8) {
        const lo = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(row + (<usize>kk << 2)), vi)));
        const hi = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(row + (<usize>kk << 2), 16), vi)));
        scatterPairs(out + <usize>(kk >> 1) * 24, i16x8.narrow_i32x4_s(lo, hi));
      }
      for (; kk < k0 + bs; kk += 2) {
        const q0 = kk < k1 ? <i32>nearest(load<f32>(row + (<usize>kk << 2)) * inv) : 0;
        const q1 = kk + 1 < k1 ? <i32>nearest(load<f32>(row + (<usize>(kk + 1) << 2)) * inv) : 0;
        store<i32>(out + <usize>(kk >> 1) * 24, (q0 & 0xffff) | (q1 << 16));
      }
    }
  }
}

/** 16 codes of one column from kk0 of a block as signed int8 (int4: 8 bytes of nibbles, low nibble first, − 8). */
// @ts-ignore: decorator
@inline function codes16(at: usize, q8: bool): v128 {
  if (q8) return v128.load(at);
  const v = v128.load64_zero(at);
  const lo = v128.and(v, i8x16.splat(15));
  const hi = i8x16.shr_u(v, 4);
  return i8x16.sub(v128.shuffle<u8>(lo, hi, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), i8x16.splat(8));
}

/**
 * The panel of W's rows [p, p + cols) (layout above), their first `k` values (kp = blocks · bs of them, the
 * stored block's tail beyond k multiplies zeros of A), int16, and the scales. Rows are `kRow` values long.
 */
function fillPanelQ(panel: usize, sp: usize, w: usize, scales: usize, kind: i32, bs: i32, p: i32, cols: i32, blocks: i32, kRow: i32): void {
  const q8 = kind == W_Q8;
  const rowBlocks = (kRow + bs - 1) / bs;
  const blob: usize = q8 ? <usize>bs : <usize>bs >> 1;
  const step: usize = q8 ? 16 : 8; // bytes of 16 codes
  const zero = i32x4.splat(0);
  for (let g = 0; g < NR; g += 4) {
    const gp = panel + (<usize>g << 2);
    for (let b = 0; b < blocks; b++) {
      for (let t = 0; t < bs; t += 16) {
        const dst = gp + (<usize>((b * bs + t) >> 1) << 5);
        let v0 = zero, v1 = zero, v2 = zero, v3 = zero;
        const rowBytes = <usize>rowBlocks * blob;
        const at = w + <usize>(p + g) * rowBytes + <usize>b * blob + (<usize>t >> 4) * step;
        if (g < cols) v0 = codes16(at, q8);
        if (g + 1 < cols) v1 = codes16(at + rowBytes, q8);
        if (g + 2 < cols) v2 = codes16(at + 2 * rowBytes, q8);
        if (g + 3 < cols) v3 = codes16(at + 3 * rowBytes, q8);
        transpose4(dst, i16x8.extend_low_i8x16_s(v0), i16x8.extend_low_i8x16_s(v1), i16x8.extend_low_i8x16_s(v2), i16x8.extend_low_i8x16_s(v3));
        transpose4(dst + 128, i16x8.extend_high_i8x16_s(v0), i16x8.extend_high_i8x16_s(v1), i16x8.extend_high_i8x16_s(v2), i16x8.extend_high_i8x16_s(v3));
      }
    }
  }
  for (let b = 0; b < blocks; b++) {
    for (let j = 0; j < NR; j++) store<f32>(sp + (<usize>(b * NR + j) << 2), j < cols ? load<f32>(scales + ((<usize>(p + j) * <usize>rowBlocks + <usize>b) << 2)) : 0);
  }
}

/** FT[row] += f32(acc) · s for one 4-column half (offset `at` bytes into the tile). */
// @ts-ignore: decorator
@inline function scaleAdd(at: usize, acc: v128, s: v128): void {
  v128.store(FT + at, f32x4.add(v128.load(FT + at), f32x4.mul(f32x4.convert_i32x4_s(acc), s)));
}

/** Six packed rows (ap) × one panel (bp, scales sp): `rows` ≤ 6 of them written to C (ldc bytes apart). */
// @ts-ignore: decorator
@inline function tileQ(c: usize, ldc: usize, ap: usize, bp: usize, sp: usize, blocks: i32, pairs: i32, rs: usize, bias: usize, flags: i32, rows: i32, cols: i32): void {
  memory.fill(FT, 0, MR * NR * 4);
  for (let b = 0; b < blocks; b++) {
    let c00 = i32x4.splat(0), c01 = i32x4.splat(0), c10 = i32x4.splat(0), c11 = i32x4.splat(0);
    let c20 = i32x4.splat(0), c21 = i32x4.splat(0), c30 = i32x4.splat(0), c31 = i32x4.splat(0);
    let c40 = i32x4.splat(0), c41 = i32x4.splat(0), c50 = i32x4.splat(0), c51 = i32x4.splat(0);
    const end = ap + <usize>pairs * 24;
    while (ap < end) {
      const b0 = v128.load(bp);
      const b1 = v128.load(bp, 16);
      let x = v128.load32_splat(ap);
      c00 = i32x4.add(c00, i32x4.dot_i16x8_s(x, b0));
      c01 = i32x4.add(c01, i32x4.dot_i16x8_s(x, b1));
      x = v128.load32_splat(ap, 4);
      c10 = i32x4.add(c10, i32x4.dot_i16x8_s(x, b0));
      c11 = i32x4.add(c11, i32x4.dot_i16x8_s(x, b1));
      x = v128.load32_splat(ap, 8);
      c20 = i32x4.add(c20, i32x4.dot_i16x8_s(x, b0));
      c21 = i32x4.add(c21, i32x4.dot_i16x8_s(x, b1));
      x = v128.load32_splat(ap, 12);
      c30 = i32x4.add(c30, i32x4.dot_i16x8_s(x, b0));
      c31 = i32x4.add(c31, i32x4.dot_i16x8_s(x, b1));
      x = v128.load32_splat(ap, 16);
      c40 = i32x4.add(c40, i32x4.dot_i16x8_s(x, b0));
      c41 = i32x4.add(c41, i32x4.dot_i16x8_s(x, b1));
      x = v128.load32_splat(ap, 20);
      c50 = i32x4.add(c50, i32x4.dot_i16x8_s(x, b0));
      c51 = i32x4.add(c51, i32x4.dot_i16x8_s(x, b1));
      bp += NR << 2;
      ap += 24;
    }
    const s0 = v128.load(sp);
    const s1 = v128.load(sp, 16);
    sp += NR << 2;
    let x = v128.load32_splat(rs);
    scaleAdd(0, c00, f32x4.mul(s0, x));
    scaleAdd(16, c01, f32x4.mul(s1, x));
    x = v128.load32_splat(rs, 4);
    scaleAdd(32, c10, f32x4.mul(s0, x));
    scaleAdd(48, c11, f32x4.mul(s1, x));
    x = v128.load32_splat(rs, 8);
    scaleAdd(64, c20, f32x4.mul(s0, x));
    scaleAdd(80, c21, f32x4.mul(s1, x));
    x = v128.load32_splat(rs, 12);
    scaleAdd(96, c30, f32x4.mul(s0, x));
    scaleAdd(112, c31, f32x4.mul(s1, x));
    x = v128.load32_splat(rs, 16);
    scaleAdd(128, c40, f32x4.mul(s0, x));
    scaleAdd(144, c41, f32x4.mul(s1, x));
    x = v128.load32_splat(rs, 20);
    scaleAdd(160, c50, f32x4.mul(s0, x));
    scaleAdd(176, c51, f32x4.mul(s1, x));
    rs += 24;
  }
  for (let r = 0; r < rows; r++) {
    const t = FT + (<usize>r << 5);
    put(c + <usize>r * ldc, v128.load(t), v128.load(t, 16), bias, flags, cols);
  }
}

/**
 * C[m, n] = act(A[m, k] · Wᵀ + bias) (+ the old C with flags & 1; gelu_tanh with flags & 2) for int8/int4 W
 * (kind W_Q8 / W_Q4 of gemm-w.ts: codes at `w`, scales f32[n · blocks] at `scales`, blocks of `bs` values,
 * bs a multiple of 16 for int8 and 32 for int4, at most 512), A float32 quantised per row and block as above. lda / ldc in floats;
 * bias 0 or f32[⌈n / 8⌉ · 8]. work: 2 · m6 · kp + 4 · m6 · blocks bytes; panel: 16 · kp + 32 · blocks bytes
 * (m6 = m rounded up to 6, blocks = ⌈k / bs⌉, kp = blocks · bs). W's stored rows are `kRow` ≥ k values long
 * (a slice of W's columns starting on a block boundary at `w` / `scales`).
 */
export function gemmQ(c: usize, ldc: i32, a: usize, lda: i32, w: usize, scales: usize, kind: i32, bs: i32, bias: usize, m: i32, n: i32, k: i32, flags: i32, work: usize, panel: usize, kRow: i32): void {
  const ldcB = <usize>ldc << 2;
  const blocks = (k + bs - 1) / bs;
  const kp = blocks * bs;
  const m6 = ((m + MR - 1) / MR) * MR;
  const rs = work + <usize>m6 * <usize>kp * 2;
  packQuantA(work, rs, a, <usize>lda << 2, m, k, bs, blocks);
  const sp = panel + (<usize>kp << 4);
  for (let p = 0; p < n; p += NR) {
    const cols = min(NR, n - p);
    fillPanelQ(panel, sp, w, scales, kind, bs, p, cols, blocks, kRow);
    const bias8 = bias ? bias + (<usize>p << 2) : 0;
    for (let i = 0; i < m; i += MR) {
      tileQ(c + <usize>i * ldcB + (<usize>p << 2), ldcB, work + <usize>i * <usize>kp * 2, panel, sp, blocks, bs >> 1, rs + <usize>i * <usize>blocks * 4, bias8, flags, min(MR, m - i), cols);
    }
  }
}
