// The integer GEMM for int4 MatMulNBits weights with signed int8 activations: C[m, n] = A[m, k] · Wᵀ (+ bias),
//   C[r][c] = Σ_chunks sA[r][h] · sW[c][h] · (Σ_{kk in h} qA[r][kk] · u[c][kk] − 8 · Σ_{kk in h} qA[r][kk])
// over chunks h of 32 k (a weight block is one or more chunks; sW[c][h] is its block's scale), u the stored
// codes 0..15 (w = u − 8), qA = A quantised per row and chunk to ±127 (sA = max|A[r][h]| / 127).
// The codes are the 7-bit operand of i16x8.relaxed_dot_i8x16_i7x16_s (pmaddubsw on x86: one instruction per
// 16 products, pair sums in int16), so it is exact and deterministic on every engine; a pair sum is at most
// 2 · 127 · 15 = 3810, so the eight quads of a chunk add up in int16 (≤ 30480) before one widening to int32
// (i32x4.extadd_pairwise_i16x8_s). The zero point is subtracted in int32, the scales applied in float32 per chunk.
// The plain-SIMD build computes the same integers with int16 dot products (dot4 below), so both builds agree
// bit for bit.
//
// Layouts, both built per call in caller scratch (kp = k rounded up to whole weight blocks, chunks = kp / 32):
//   A packed  [⌈m / 6⌉ tiles][kp / 4 quads][6 rows] × 4 int8 (rows past m zero), then per tile and chunk
//             f32[6] scales sA and i32[6] zero-point terms 8 · Σ qA: [⌈m / 6⌉][chunks][12] × 4 bytes;
//   W panel   [kp / 4 quads][8 columns] × 4 codes, then the scales f32[chunks][8] (0 past the last column).
// A 6 × 8 tile then reads, per quad, 8 columns from two vectors and 6 rows as splats: 12 dot products.
import { put } from "./gemm";

const NR = 8; // columns per panel
const MR = 6; // rows per tile
const CHUNK = 32; // k per int16 accumulation (8 quads: 8 · 3810 < 32767)
const LEVELS: f32 = 127;
// The float accumulators of one 6 × 8 tile (the int16 ones fill the registers).
const FT = memory.data(MR * NR * 4, 16);

/**
 * Per i16 lane pair (relaxed build) or i32 lane (plain build) j: acc + Σ_{i = 4j…4j+3} x[i] · u[i]
 * (x signed bytes, u bytes in [0, 15]). {@link widen} turns either into the i32 quad sums per column.
 */
// @ts-ignore: decorator
@inline function dot4(x: v128, u: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i16x8.add(acc, i16x8.relaxed_dot_i8x16_i7x16_s(x, u));
  const lo = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(x), i16x8.extend_low_i8x16_u(u)); // pair sums of bytes 0..7
  const hi = i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(x), i16x8.extend_high_i8x16_u(u));
  return i32x4.add(acc, i32x4.add(v128.shuffle<u32>(lo, hi, 0, 2, 4, 6), v128.shuffle<u32>(lo, hi, 1, 3, 5, 7)));
}

/** A chunk's accumulator as i32 column sums (the relaxed build's int16 pairs added; the plain one's as is). */
// @ts-ignore: decorator
@inline function widen(acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.extadd_pairwise_i16x8_s(acc);
  return acc;
}

// 1.5 · 2²³: a float |x| < 2²² plus this rounds x to an integer (to nearest, ties to even: f32x4.nearest's
// rounding) in the low mantissa bits, so that bits(x + MAGIC) − bits(MAGIC) is that integer as i32.
const MAGIC: f32 = 12582912;

/** nearest(x) as i32 lanes for |x| < 2²² (two plain-SIMD instructions; trunc_sat is about eight in V8). */
// @ts-ignore: decorator
@inline function roundToInt(x: v128): v128 {
  return i32x4.sub(f32x4.add(x, f32x4.splat(MAGIC)), i32x4.splat(0x4b400000));
}

/**
 * The accumulator's start for one row and chunk, −8 · Σ qA (the zero point), as {@link dot4} adds to it: the
 * relaxed build's two int16 lanes of a column, −8 · (Σ of the pairs it sums) each (|·| ≤ 8 · 16 · 127 = 16256,
 * and every partial sum stays within 16 · 127 · 8 of it: no int16 overflow), the plain build's int32 total.
 * se / so: Σ qA over the k ≡ 0, 1 and ≡ 2, 3 (mod 4) of the chunk.
 */
// @ts-ignore: decorator
@inline function zeroTerm(se: i32, so: i32): i32 {
  if (ASC_FEATURE_RELAXED_SIMD) return ((-8 * se) & 0xffff) | (-8 * so << 16);
  return -8 * (se + so);
}

/**
 * Rows [0, m) of A (row stride ldaB bytes, k values) quantised per chunk of 32 to ±127 into `dst` and the
 * per-chunk terms at `rs` (layouts above), rows up to the next multiple of 6, kp values per row (zeros past k).
 */
export function packQuantA4(dst: usize, rs: usize, a: usize, ldaB: usize, m: i32, k: i32, kp: i32): void {
  const m6 = ((m + MR - 1) / MR) * MR;
  const chunks = kp / CHUNK;
  const tileBytes = <usize>kp * MR; // kp / 4 quads × 6 rows × 4 bytes
  for (let r = 0; r < m6; r++) {
    const out = dst + <usize>(r / MR) * tileBytes + (<usize>(r % MR) << 2);
    const rsr = rs + <usize>(r / MR) * <usize>chunks * (MR * 8) + (<usize>(r % MR) << 2);
    if (r >= m) {
      for (let t = 0; t < kp; t += 4) store<u32>(out + <usize>(t >> 2) * (MR * 4), 0);
      for (let h = 0; h < chunks; h++) {
        store<f32>(rsr + <usize>h * (MR * 8), 0);
        store<i32>(rsr + <usize>h * (MR * 8), 0, MR * 4);
      }
      continue;
    }
    const row = a + <usize>r * ldaB;
    for (let h = 0; h < chunks; h++) {
      const k0 = h * CHUNK;
      const k1 = min(k, k0 + CHUNK);
      const k4 = k0 + (max(0, k1 - k0) & ~3);
      // |x| as bits: non-negative floats order as their bit patterns do, so an integer max finds the largest
      // (one instruction; f32x4.max is several, for NaN semantics)
      let mx = i32x4.splat(0);
      for (let kk = k0; kk < k4; kk += 4) mx = i32x4.max_s(mx, v128.and(v128.load(row + (<usize>kk << 2)), i32x4.splat(0x7fffffff)));
      mx = i32x4.max_s(mx, v128.shuffle<u32>(mx, mx, 2, 3, 0, 1));
      mx = i32x4.max_s(mx, v128.shuffle<u32>(mx, mx, 1, 0, 3, 2));
      let bits = i32x4.extract_lane(mx, 0);
      for (let kk = k4; kk < k1; kk++) bits = max(bits, load<i32>(row + (<usize>kk << 2)) & 0x7fffffff);
      const amax = reinterpret<f32>(bits);
      const inv: f32 = amax > 0 ? LEVELS / amax : 0;
      const vi = f32x4.splat(inv);
      let pairs = i16x8.splat(0); // Σ of the byte pairs (4t, 4t + 1) in even lanes, (4t + 2, 4t + 3) in odd ones
      let se = 0, so = 0; // the same sums over the scalar tail
      let kk = k0;
      for (; kk + 16 <= k1; kk += 16) {
        const p = row + (<usize>kk << 2);
        const q0 = roundToInt(f32x4.mul(v128.load(p), vi));
        const q1 = roundToInt(f32x4.mul(v128.load(p, 16), vi));
        const q2 = roundToInt(f32x4.mul(v128.load(p, 32), vi));
        const q3 = roundToInt(f32x4.mul(v128.load(p, 48), vi));
        const q = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3));
        pairs = i16x8.add(pairs, i16x8.extadd_pairwise_i8x16_s(q));
        const o = out + <usize>(kk >> 2) * (MR * 4);
        store<i32>(o, i32x4.extract_lane(q, 0));
        store<i32>(o, i32x4.extract_lane(q, 1), MR * 4);
        store<i32>(o, i32x4.extract_lane(q, 2), MR * 8);
        store<i32>(o, i32x4.extract_lane(q, 3), MR * 12);
      }
      for (; kk < k0 + CHUNK; kk += 4) {
        let word: u32 = 0;
        for (let j = 0; j < 4; j++) {
          const q = kk + j < k1 ? <i32>nearest(load<f32>(row + (<usize>(kk + j) << 2)) * inv) : 0;
          if (j < 2) se += q;
          else so += q;
          word |= (<u32>q & 0xff) << (8 * j);
        }
        store<u32>(out + <usize>(kk >> 2) * (MR * 4), word);
      }
      const t = i16x8.add(pairs, v128.shuffle<u32>(pairs, pairs, 2, 3, 0, 1));
      const u = i16x8.add(t, v128.shuffle<u32>(t, t, 1, 0, 3, 2));
      se += i16x8.extract_lane_s(u, 0);
      so += i16x8.extract_lane_s(u, 1);
      store<f32>(rsr + <usize>h * (MR * 8), amax / LEVELS);
      store<i32>(rsr + <usize>h * (MR * 8), zeroTerm(se, so), MR * 4);
    }
  }
}

/** Four columns' 16 codes (4 quads as i32 lanes) → quads 0..3 of those columns, 32 bytes apart. */
// @ts-ignore: decorator
@inline function transpose4(dst: usize, v0: v128, v1: v128, v2: v128, v3: v128): void {
  const a = v128.shuffle<u32>(v0, v1, 0, 4, 1, 5);
  const b = v128.shuffle<u32>(v2, v3, 0, 4, 1, 5);
  const c = v128.shuffle<u32>(v0, v1, 2, 6, 3, 7);
  const d = v128.shuffle<u32>(v2, v3, 2, 6, 3, 7);
  v128.store(dst, v128.shuffle<u32>(a, b, 0, 1, 4, 5));
  v128.store(dst + 32, v128.shuffle<u32>(a, b, 2, 3, 6, 7));
  v128.store(dst + 64, v128.shuffle<u32>(c, d, 0, 1, 4, 5));
  v128.store(dst + 96, v128.shuffle<u32>(c, d, 2, 3, 6, 7));
}

/** 16 int4 codes 0..15 as bytes (8 bytes of nibbles, low nibble first). */
// @ts-ignore: decorator
@inline function codes16(at: usize): v128 {
  const v = v128.load64_zero(at);
  return v128.shuffle<u8>(v128.and(v, i8x16.splat(15)), i8x16.shr_u(v, 4), 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
}

/**
 * The panel of W's rows [p, p + cols) (layout above): their first kp codes (the stored blocks are contiguous,
 * bs / 2 bytes each, so code kk of a row is at byte kk / 2) and the scale of each chunk's block.
 */
function fillPanel4(panel: usize, sp: usize, w: usize, scales: usize, bs: i32, p: i32, cols: i32, kp: i32, kRow: i32): void {
  const rowBlocks = (kRow + bs - 1) / bs;
  const rowBytes = <usize>rowBlocks * (<usize>bs >> 1);
  const zero = i32x4.splat(0);
  for (let g = 0; g < NR; g += 4) {
    const col = w + <usize>(p + g) * rowBytes;
    for (let t = 0; t < kp; t += 16) {
      const at = col + (<usize>t >> 1);
      let v0 = zero, v1 = zero, v2 = zero, v3 = zero;
      if (g < cols) v0 = codes16(at);
      if (g + 1 < cols) v1 = codes16(at + rowBytes);
      if (g + 2 < cols) v2 = codes16(at + 2 * rowBytes);
      if (g + 3 < cols) v3 = codes16(at + 3 * rowBytes);
      transpose4(panel + (<usize>g << 2) + (<usize>(t >> 2) << 5), v0, v1, v2, v3);
    }
  }
  const chunks = kp / CHUNK;
  for (let h = 0; h < chunks; h++) {
    const b = (h * CHUNK) / bs;
    for (let j = 0; j < NR; j++) store<f32>(sp + (<usize>(h * NR + j) << 2), j < cols ? load<f32>(scales + ((<usize>(p + j) * <usize>rowBlocks + <usize>b) << 2)) : 0);
  }
}

/** FT[at] += f32(widen(acc)) · s. */
// @ts-ignore: decorator
@inline function scaleAdd(at: usize, acc: v128, s: v128): void {
  v128.store(FT + at, f32x4.add(v128.load(FT + at), f32x4.mul(f32x4.convert_i32x4_s(widen(acc)), s)));
}

/** Six packed rows (ap, terms rs) × one panel (bp, scales sp); `rows` ≤ 6 of them written to C (ldc bytes apart). */
// @ts-ignore: decorator
@inline function tile4(c: usize, ldc: usize, ap: usize, bp: usize, sp: usize, chunks: i32, rs: usize, bias: usize, flags: i32, rows: i32, cols: i32): void {
  memory.fill(FT, 0, MR * NR * 4);
  for (let h = 0; h < chunks; h++) {
    const z = rs + MR * 4; // the rows' zero-point terms start the accumulators
    let c00 = v128.load32_splat(z), c10 = v128.load32_splat(z, 4), c20 = v128.load32_splat(z, 8);
    let c30 = v128.load32_splat(z, 12), c40 = v128.load32_splat(z, 16), c50 = v128.load32_splat(z, 20);
    let c01 = c00, c11 = c10, c21 = c20, c31 = c30, c41 = c40, c51 = c50;
    const end = ap + CHUNK / 4 * MR * 4;
    while (ap < end) {
      const b0 = v128.load(bp);
      const b1 = v128.load(bp, 16);
      let x = v128.load32_splat(ap);
      c00 = dot4(x, b0, c00);
      c01 = dot4(x, b1, c01);
      x = v128.load32_splat(ap, 4);
      c10 = dot4(x, b0, c10);
      c11 = dot4(x, b1, c11);
      x = v128.load32_splat(ap, 8);
      c20 = dot4(x, b0, c20);
      c21 = dot4(x, b1, c21);
      x = v128.load32_splat(ap, 12);
      c30 = dot4(x, b0, c30);
      c31 = dot4(x, b1, c31);
      x = v128.load32_splat(ap, 16);
      c40 = dot4(x, b0, c40);
      c41 = dot4(x, b1, c41);
      x = v128.load32_splat(ap, 20);
      c50 = dot4(x, b0, c50);
      c51 = dot4(x, b1, c51);
      bp += NR << 2;
      ap += MR * 4;
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
    rs += MR * 8;
  }
  for (let r = 0; r < rows; r++) {
    const t = FT + (<usize>r << 5);
    put(c + <usize>r * ldc, v128.load(t), v128.load(t, 16), bias, flags, cols);
  }
}

/**
 * gemmQ's product (same arguments and flags; kind must be W_Q4, bs a multiple of 32) with int8 activations and
 * 8-bit dot products. work: m6 · kp + 8 · m6 · kp / 32 bytes; panel: 8 · kp + kp bytes (m6 = m rounded up to
 * 6, kp = ⌈k / bs⌉ · bs).
 */
export function gemmQ4A8(c: usize, ldc: i32, a: usize, lda: i32, w: usize, scales: usize, kind: i32, bs: i32, bias: usize, m: i32, n: i32, k: i32, flags: i32, work: usize, panel: usize, kRow: i32): void {
  const ldcB = <usize>ldc << 2;
  const kp = ((k + bs - 1) / bs) * bs;
  const chunks = kp / CHUNK;
  const m6 = ((m + MR - 1) / MR) * MR;
  const rs = work + <usize>m6 * <usize>kp;
  packQuantA4(work, rs, a, <usize>lda << 2, m, k, kp);
  const sp = panel + (<usize>kp << 3);
  for (let p = 0; p < n; p += NR) {
    const cols = min(NR, n - p);
    fillPanel4(panel, sp, w, scales, bs, p, cols, kp, kRow);
    const bias8 = bias ? bias + (<usize>p << 2) : 0;
    for (let i = 0; i < m; i += MR) {
      tile4(c + <usize>i * ldcB + (<usize>p << 2), ldcB, work + <usize>i * <usize>kp, panel, sp, chunks, rs + <usize>(i / MR) * <usize>chunks * (MR * 8), bias8, flags, min(MR, m - i), cols);
    }
  }
}
