// The integer GEMM for int4 MatMulNBits weights with signed int8 activations: C[m, n] = A[m, k] · Wᵀ (+ bias),
//   C[r][c] = Σ_chunks sA[r][h] · sW[c][h] · Σ_{kk in h} qA[r][kk] · (u[c][kk] − 8)
// over chunks h of 32 k (a weight block is one or more chunks; sW[c][h] is its block's scale), u the stored
// codes 0..15, qA = A quantised per row and chunk to ±127 (sA = max|A[r][h]| / 127; gemm-q4-pack.ts has the
// layouts). The codes are the 7-bit operand of relaxed SIMD's 8-bit dot products, so these are exact and
// deterministic on every engine, in one of two forms that give the same integers:
//   pairs — i16x8.relaxed_dot_i8x16_i7x16_s (pmaddubsw on x86: one instruction per 16 products) into int16
//           lanes, widened once per chunk (i32x4.extadd_pairwise_i16x8_s): a pair sum is at most
//           2 · 127 · 15 = 3810, and a chunk's lane, started at its share of the zero point, stays within
//           16 · 127 · 8 = 16256 of 0 (storeZero): no int16 overflow;
//   wide  — i32x4.relaxed_dot_i8x16_i7x16_add_s into int32 lanes: one instruction where the CPU has 8-bit dot
//           products (AVX-VNNI's vpdpbusd, Arm's sdot), three on x86 without (pmaddubsw + pmaddwd + paddd).
// gemmQ4A8 takes the wide form where {@link wideDot} finds it native, else the pairs; the zero point starts the
// accumulators, the scales are applied in float32 per chunk. The plain-SIMD build computes the same integers
// with int16 dot products, so both builds and both forms agree bit for bit.
// A 6 × 8 tile reads, per quad of k, 8 columns from two vectors and 6 rows as splats: 12 dot products.
import { put } from "./gemm";
import { CHUNK, fillPanel4, MR, NR, packQuantA4, TERMS } from "./gemm-q4-pack";

// The float accumulators of one 6 × 8 tile (the integer ones fill the registers).
const FT = memory.data(MR * NR * 4, 16);
// Operands of wideDot's probe, in memory so that the optimiser cannot fold it: 127s, then 255s (outside i7).
const PROBE = memory.data<u8>([127, 127, 127, 127, 127, 127, 127, 127, 127, 127, 127, 127, 127, 127, 127, 127, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255], 16);

/**
 * True when this engine's i32x4.relaxed_dot_i8x16_i7x16_add_s does not go through int16 pair sums, told by a
 * second operand outside the deterministic range: pmaddubsw saturates 2 · 255 · 127 to 32767 (lane 65534),
 * vpdpbusd sums 4 · 255 · 127 exactly (129540), Arm's sdot reads 255 as −1 (−508).
 */
export function wideDot(): bool {
  if (!ASC_FEATURE_RELAXED_SIMD) return false;
  const r = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(PROBE), v128.load(PROBE, 16), i32x4.splat(0));
  return i32x4.extract_lane(r, 0) != 65534;
}

/**
 * acc + per column j of four: Σ_{i = 4j…4j+3} x[i] · u[i] (x signed bytes, u bytes in [0, 15]), as i32 lanes,
 * or (relaxed build, pairs form) as the two int16 lanes 2j, 2j + 1 that {@link widen} adds.
 */
// @ts-ignore: decorator
@inline function dot4(x: v128, u: v128, acc: v128, wide: bool): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    if (wide) return i32x4.relaxed_dot_i8x16_i7x16_add_s(x, u, acc);
    return i16x8.add(acc, i16x8.relaxed_dot_i8x16_i7x16_s(x, u));
  }
  const lo = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(x), i16x8.extend_low_i8x16_u(u)); // pair sums of bytes 0..7
  const hi = i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(x), i16x8.extend_high_i8x16_u(u));
  return i32x4.add(acc, i32x4.add(v128.shuffle<u32>(lo, hi, 0, 2, 4, 6), v128.shuffle<u32>(lo, hi, 1, 3, 5, 7)));
}

/** A chunk's accumulator as i32 column sums. */
// @ts-ignore: decorator
@inline function widen(acc: v128, wide: bool): v128 {
  if (ASC_FEATURE_RELAXED_SIMD && !wide) return i32x4.extadd_pairwise_i16x8_s(acc);
  return acc;
}

/** FT[at] += f32(widen(acc)) · s. */
// @ts-ignore: decorator
@inline function scaleAdd(at: usize, acc: v128, s: v128, wide: bool): void {
  v128.store(FT + at, f32x4.add(v128.load(FT + at), f32x4.mul(f32x4.convert_i32x4_s(widen(acc, wide)), s)));
}

/**
 * Six packed rows (ap, terms rs) × one panel (bp, scales sp); `rows` ≤ 6 of them written to C (ldc bytes apart).
 * `wide` picks the form (a constant at each call: each inlined copy keeps one).
 */
// @ts-ignore: decorator
@inline function tile4(c: usize, ldc: usize, ap: usize, bp: usize, sp: usize, chunks: i32, rs: usize, bias: usize, flags: i32, rows: i32, cols: i32, wide: bool): void {
  memory.fill(FT, 0, MR * NR * 4);
  for (let h = 0; h < chunks; h++) {
    const z = rs + (ASC_FEATURE_RELAXED_SIMD && !wide ? MR * 4 : MR * 8); // the rows' zero-point terms start the accumulators
    let c00 = v128.load32_splat(z), c10 = v128.load32_splat(z, 4), c20 = v128.load32_splat(z, 8);
    let c30 = v128.load32_splat(z, 12), c40 = v128.load32_splat(z, 16), c50 = v128.load32_splat(z, 20);
    let c01 = c00, c11 = c10, c21 = c20, c31 = c30, c41 = c40, c51 = c50;
    const end = ap + CHUNK / 4 * MR * 4;
    while (ap < end) {
      const b0 = v128.load(bp);
      const b1 = v128.load(bp, 16);
      let x = v128.load32_splat(ap);
      c00 = dot4(x, b0, c00, wide);
      c01 = dot4(x, b1, c01, wide);
      x = v128.load32_splat(ap, 4);
      c10 = dot4(x, b0, c10, wide);
      c11 = dot4(x, b1, c11, wide);
      x = v128.load32_splat(ap, 8);
      c20 = dot4(x, b0, c20, wide);
      c21 = dot4(x, b1, c21, wide);
      x = v128.load32_splat(ap, 12);
      c30 = dot4(x, b0, c30, wide);
      c31 = dot4(x, b1, c31, wide);
      x = v128.load32_splat(ap, 16);
      c40 = dot4(x, b0, c40, wide);
      c41 = dot4(x, b1, c41, wide);
      x = v128.load32_splat(ap, 20);
      c50 = dot4(x, b0, c50, wide);
      c51 = dot4(x, b1, c51, wide);
      bp += NR << 2;
      ap += MR * 4;
    }
    const s0 = v128.load(sp);
    const s1 = v128.load(sp, 16);
    sp += NR << 2;
    let x = v128.load32_splat(rs);
    scaleAdd(0, c00, f32x4.mul(s0, x), wide);
    scaleAdd(16, c01, f32x4.mul(s1, x), wide);
    x = v128.load32_splat(rs, 4);
    scaleAdd(32, c10, f32x4.mul(s0, x), wide);
    scaleAdd(48, c11, f32x4.mul(s1, x), wide);
    x = v128.load32_splat(rs, 8);
    scaleAdd(64, c20, f32x4.mul(s0, x), wide);
    scaleAdd(80, c21, f32x4.mul(s1, x), wide);
    x = v128.load32_splat(rs, 12);
    scaleAdd(96, c30, f32x4.mul(s0, x), wide);
    scaleAdd(112, c31, f32x4.mul(s1, x), wide);
    x = v128.load32_splat(rs, 16);
    scaleAdd(128, c40, f32x4.mul(s0, x), wide);
    scaleAdd(144, c41, f32x4.mul(s1, x), wide);
    x = v128.load32_splat(rs, 20);
    scaleAdd(160, c50, f32x4.mul(s0, x), wide);
    scaleAdd(176, c51, f32x4.mul(s1, x), wide);
    rs += TERMS;
  }
  for (let r = 0; r < rows; r++) {
    const t = FT + (<usize>r << 5);
    put(c + <usize>r * ldc, v128.load(t), v128.load(t, 16), bias, flags, cols);
  }
}

/** The product of gemmQ4A8 / gemmQ4A8Pairs in the form `wide` says (inlined once per form, see below). */
// @ts-ignore: decorator
@inline function gemmQ4(c: usize, ldc: i32, a: usize, lda: i32, w: usize, scales: usize, bs: i32, bias: usize, m: i32, n: i32, k: i32, flags: i32, work: usize, panel: usize, kRow: i32, wide: bool): void {
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
      const ci = c + <usize>i * ldcB + (<usize>p << 2);
      const ai = work + <usize>i * <usize>kp;
      const ri = rs + <usize>(i / MR) * <usize>chunks * TERMS;
      tile4(ci, ldcB, ai, panel, sp, chunks, ri, bias8, flags, min(MR, m - i), cols, wide);
    }
  }
}

// One function per form: with both tiles in one function V8 allocates registers for both and each runs 10–15 %
// slower (measured in workerd).
function gemmQ4Wide(c: usize, ldc: i32, a: usize, lda: i32, w: usize, scales: usize, bs: i32, bias: usize, m: i32, n: i32, k: i32, flags: i32, work: usize, panel: usize, kRow: i32): void {
  gemmQ4(c, ldc, a, lda, w, scales, bs, bias, m, n, k, flags, work, panel, kRow, true);
}

function gemmQ4Pairs(c: usize, ldc: i32, a: usize, lda: i32, w: usize, scales: usize, bs: i32, bias: usize, m: i32, n: i32, k: i32, flags: i32, work: usize, panel: usize, kRow: i32): void {
  gemmQ4(c, ldc, a, lda, w, scales, bs, bias, m, n, k, flags, work, panel, kRow, false);
}

/**
 * gemmQ's product (same arguments and flags; kind must be W_Q4, bs a multiple of 32) with int8 activations and
 * 8-bit dot products in the faster form for this engine (wideDot). work: m6 · kp + 3 · m6 · kp / 8 bytes;
 * panel: 9 · kp bytes (m6 = m rounded up to 6, kp = ⌈k / bs⌉ · bs).
 */
export function gemmQ4A8(c: usize, ldc: i32, a: usize, lda: i32, w: usize, scales: usize, kind: i32, bs: i32, bias: usize, m: i32, n: i32, k: i32, flags: i32, work: usize, panel: usize, kRow: i32): void {
  if (wideDot()) gemmQ4Wide(c, ldc, a, lda, w, scales, bs, bias, m, n, k, flags, work, panel, kRow);
  else gemmQ4Pairs(c, ldc, a, lda, w, scales, bs, bias, m, n, k, flags, work, panel, kRow);
}

/** gemmQ4A8 always in the wide form (the same results; for tests and the benchmark on CPUs that pick pairs). */
export function gemmQ4A8Wide(c: usize, ldc: i32, a: usize, lda: i32, w: usize, scales: usize, kind: i32, bs: i32, bias: usize, m: i32, n: i32, k: i32, flags: i32, work: usize, panel: usize, kRow: i32): void {
  gemmQ4Wide(c, ldc, a, lda, w, scales, bs, bias, m, n, k, flags, work, panel, kRow);
}

/** gemmQ4A8 always in the pairs form (the same results; for tests and the benchmark on CPUs that pick wide). */
export function gemmQ4A8Pairs(c: usize, ldc: i32, a: usize, lda: i32, w: usize, scales: usize, kind: i32, bs: i32, bias: usize, m: i32, n: i32, k: i32, flags: i32, work: usize, panel: usize, kRow: i32): void {
  gemmQ4Pairs(c, ldc, a, lda, w, scales, bs, bias, m, n, k, flags, work, panel, kRow);
}
