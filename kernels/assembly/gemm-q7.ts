// The integer GEMM with relaxed SIMD's 8-bit dot products: C[m, n] = A[m, k] · Wᵀ (+ bias) for int8/int4
// MatMulNBits W, as gemm-q.ts but with 7-bit activations:
//   C[r][c] = Σ_blocks sA[r][b] · sW[c][b] · (Σ_{kk in b} uA[r][kk] · qW[c][kk] − 64 · Σ_{kk in b} qW[c][kk])
// uA = qA + 64 ∈ [1, 127], qA = A quantised per row and weight block with ±63 levels (sA = max|A[r][b]| / 63):
// i32x4.relaxed_dot_i8x16_i7x16_add_s takes the signed codes first and the activations second, and is exact and
// deterministic only while the second operand stays in [0, 127]. One instruction (three on x86 without
// AVX-VNNI) multiplies four k of four columns and accumulates; a 6 × 8 tile is 12 of them per four k.
// The plain-SIMD build computes the same integers with int16 dot products (dot4 below), so both builds agree.
//
// Layouts: A packed [⌈m / 6⌉][kp / 4 quads][6 rows] × 4 bytes (rows past m hold the zero point 64), scales
// f32[⌈m / 6⌉][blocks][6]; W panel [kp / 4 quads][8 columns] × 4 codes, then i32[blocks][8] corrections
// (64 · Σ codes), then f32[blocks][8] scales.
import { put } from "./gemm";
import { W_Q8 } from "./gemm-w";
import { transpose4 } from "./simd";

const NR = 8;
const MR = 6;
const LEVELS: f32 = 63;
const FT = memory.data(MR * NR * 4, 16);

/** acc + per lane j: Σ_{i = 4j…4j+3} w[i] · x[i] (w signed bytes, x bytes in [0, 127]). */
// @ts-ignore: decorator
@inline function dot4(w: v128, x: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.relaxed_dot_i8x16_i7x16_add_s(w, x, acc);
  const lo = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w), i16x8.extend_low_i8x16_u(x)); // pair sums of bytes 0..7
  const hi = i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w), i16x8.extend_high_i8x16_u(x));
  return i32x4.add(acc, i32x4.add(v128.shuffle<u32>(lo, hi, 0, 2, 4, 6), v128.shuffle<u32>(lo, hi, 1, 3, 5, 7)));
}

/** Rows [0, m) of A quantised to 7 bits per block into `dst` and `rs` (layouts above). */
export function packQuantA7(dst: usize, rs: usize, a: usize, ldaB: usize, m: i32, k: i32, bs: i32, blocks: i32): void {
  const m6 = ((m + MR - 1) / MR) * MR;
  const kp = blocks * bs;
  const blockBytes = <usize>kp * 6; // kp / 4 quads × 6 rows × 4 bytes
  const zp = i8x16.splat(64);
  for (let r = 0; r < m6; r++) {
    const out = dst + <usize>(r / MR) * blockBytes + (<usize>(r % MR) << 2);
    const rsr = rs + <usize>(r / MR) * <usize>blocks * 24 + (<usize>(r % MR) << 2);
    if (r >= m) {
      for (let t = 0; t < kp; t += 4) store<u32>(out + <usize>(t >> 2) * 24, 0x40404040);
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
      for (; kk + 16 <= k1; kk += 16) {
        const p = row + (<usize>kk << 2);
        const q0 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p), vi)));
        const q1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 16), vi)));
        const q2 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 32), vi)));
        const q3 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 48), vi)));
        const q = i8x16.add(i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3)), zp);
        const o = out + <usize>(kk >> 2) * 24;
        store<i32>(o, i32x4.extract_lane(q, 0));
        store<i32>(o, i32x4.extract_lane(q, 1), 24);
        store<i32>(o, i32x4.extract_lane(q, 2), 48);
        store<i32>(o, i32x4.extract_lane(q, 3), 72);
      }
      for (; kk < k0 + bs; kk += 4) {
        let word: u32 = 0;
        for (let j = 0; j < 4; j++) {
          const q = kk + j < k1 ? <i32>nearest(load<f32>(row + (<usize>(kk + j) << 2)) * inv) : 0;
          word |= <u32>(q + 64) << (8 * j);
        }
        store<u32>(out + <usize>(kk >> 2) * 24, word);
      }
    }
  }
}

/** 16 codes as signed bytes (int4: 8 bytes of nibbles, low nibble first, − 8). */
// @ts-ignore: decorator
@inline function codes16(at: usize, q8: bool): v128 {
  if (q8) return v128.load(at);
  const v = v128.load64_zero(at);
  return i8x16.sub(v128.shuffle<u8>(v128.and(v, i8x16.splat(15)), i8x16.shr_u(v, 4), 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), i8x16.splat(8));
}

/** Σ of 16 signed bytes. */
// @ts-ignore: decorator
@inline function sum16(v: v128): i32 {
  const s = i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(v));
  const t = i32x4.add(s, v128.shuffle<u32>(s, s, 2, 3, 0, 1));
  return i32x4.extract_lane(t, 0) + i32x4.extract_lane(t, 1);
}

/** The panel of W's rows [p, p + cols): codes by quads, corrections and scales (layout above). */
function fillPanel7(panel: usize, corr: usize, sp: usize, w: usize, scales: usize, kind: i32, bs: i32, p: i32, cols: i32, blocks: i32, kRow: i32): void {
  const q8 = kind == W_Q8;
  const rowBlocks = (kRow + bs - 1) / bs;
  const blob: usize = q8 ? <usize>bs : <usize>bs >> 1;
  const step: usize = q8 ? 16 : 8;
  const rowBytes = <usize>rowBlocks * blob;
  const zero = i32x4.splat(0);
  memory.fill(corr, 0, <usize>blocks * 32);
  for (let g = 0; g < NR; g += 4) {
    for (let b = 0; b < blocks; b++) {
      const cb = corr + (<usize>(b * NR + g) << 2);
      for (let t = 0; t < bs; t += 16) {
        let v0 = zero, v1 = zero, v2 = zero, v3 = zero;
        const at = w + <usize>(p + g) * rowBytes + <usize>b * blob + (<usize>t >> 4) * step;
        if (g < cols) v0 = codes16(at, q8);
        if (g + 1 < cols) v1 = codes16(at + rowBytes, q8);
        if (g + 2 < cols) v2 = codes16(at + 2 * rowBytes, q8);
        if (g + 3 < cols) v3 = codes16(at + 3 * rowBytes, q8);
        transpose4(panel + (<usize>g << 2) + (<usize>((b * bs + t) >> 2) << 5), v0, v1, v2, v3);
        store<i32>(cb, load<i32>(cb) + 64 * sum16(v0));
        store<i32>(cb, load<i32>(cb, 4) + 64 * sum16(v1), 4);
        store<i32>(cb, load<i32>(cb, 8) + 64 * sum16(v2), 8);
        store<i32>(cb, load<i32>(cb, 12) + 64 * sum16(v3), 12);
      }
    }
  }
  for (let b = 0; b < blocks; b++) {
    for (let j = 0; j < NR; j++) store<f32>(sp + (<usize>(b * NR + j) << 2), j < cols ? load<f32>(scales + ((<usize>(p + j) * <usize>rowBlocks + <usize>b) << 2)) : 0);
  }
}

/** FT[at] += f32(acc − corr) · s. */
// @ts-ignore: decorator
@inline function scaleAdd(at: usize, acc: v128, corr: v128, s: v128): void {
  v128.store(FT + at, f32x4.add(v128.load(FT + at), f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(acc, corr)), s)));
}

/** Six packed rows × one panel; `rows` ≤ 6 of them written to C. */
// @ts-ignore: decorator
@inline function tile7(c: usize, ldc: usize, ap: usize, bp: usize, corr: usize, sp: usize, blocks: i32, quads: i32, rs: usize, bias: usize, flags: i32, rows: i32, cols: i32): void {
  memory.fill(FT, 0, MR * NR * 4);
  for (let b = 0; b < blocks; b++) {
    let c00 = i32x4.splat(0), c01 = i32x4.splat(0), c10 = i32x4.splat(0), c11 = i32x4.splat(0);
    let c20 = i32x4.splat(0), c21 = i32x4.splat(0), c30 = i32x4.splat(0), c31 = i32x4.splat(0);
    let c40 = i32x4.splat(0), c41 = i32x4.splat(0), c50 = i32x4.splat(0), c51 = i32x4.splat(0);
    const end = ap + <usize>quads * 24;
    while (ap < end) {
      const b0 = v128.load(bp);
      const b1 = v128.load(bp, 16);
      let x = v128.load32_splat(ap);
      c00 = dot4(b0, x, c00);
      c01 = dot4(b1, x, c01);
      x = v128.load32_splat(ap, 4);
      c10 = dot4(b0, x, c10);
      c11 = dot4(b1, x, c11);
      x = v128.load32_splat(ap, 8);
      c20 = dot4(b0, x, c20);
      c21 = dot4(b1, x, c21);
      x = v128.load32_splat(ap, 12);
      c30 = dot4(b0, x, c30);
      c31 = dot4(b1, x, c31);
      x = v128.load32_splat(ap, 16);
      c40 = dot4(b0, x, c40);
      c41 = dot4(b1, x, c41);
      x = v128.load32_splat(ap, 20);
      c50 = dot4(b0, x, c50);
      c51 = dot4(b1, x, c51);
      bp += NR << 2;
      ap += 24;
    }
    const k0 = v128.load(corr);
    const k1 = v128.load(corr, 16);
    corr += NR << 2;
    const s0 = v128.load(sp);
    const s1 = v128.load(sp, 16);
    sp += NR << 2;
    let x = v128.load32_splat(rs);
    scaleAdd(0, c00, k0, f32x4.mul(s0, x));
    scaleAdd(16, c01, k1, f32x4.mul(s1, x));
    x = v128.load32_splat(rs, 4);
    scaleAdd(32, c10, k0, f32x4.mul(s0, x));
    scaleAdd(48, c11, k1, f32x4.mul(s1, x));
    x = v128.load32_splat(rs, 8);
    scaleAdd(64, c20, k0, f32x4.mul(s0, x));
    scaleAdd(80, c21, k1, f32x4.mul(s1, x));
    x = v128.load32_splat(rs, 12);
    scaleAdd(96, c30, k0, f32x4.mul(s0, x));
    scaleAdd(112, c31, k1, f32x4.mul(s1, x));
    x = v128.load32_splat(rs, 16);
    scaleAdd(128, c40, k0, f32x4.mul(s0, x));
    scaleAdd(144, c41, k1, f32x4.mul(s1, x));
    x = v128.load32_splat(rs, 20);
    scaleAdd(160, c50, k0, f32x4.mul(s0, x));
    scaleAdd(176, c51, k1, f32x4.mul(s1, x));
    rs += 24;
  }
  for (let r = 0; r < rows; r++) {
    const t = FT + (<usize>r << 5);
    put(c + <usize>r * ldc, v128.load(t), v128.load(t, 16), bias, flags, cols);
  }
}

/**
 * gemmQ's product (same arguments and flags) with 7-bit activations and 8-bit dot products. work:
 * m6 · kp + 4 · m6 · blocks bytes; panel: 8 · kp + 64 · blocks bytes (m6, kp, blocks as gemmQ's).
 */
export function gemmQ7(c: usize, ldc: i32, a: usize, lda: i32, w: usize, scales: usize, kind: i32, bs: i32, bias: usize, m: i32, n: i32, k: i32, flags: i32, work: usize, panel: usize, kRow: i32): void {
  const ldcB = <usize>ldc << 2;
  const blocks = (k + bs - 1) / bs;
  const kp = blocks * bs;
  const m6 = ((m + MR - 1) / MR) * MR;
  const rs = work + <usize>m6 * <usize>kp;
  packQuantA7(work, rs, a, <usize>lda << 2, m, k, bs, blocks);
  const corr = panel + (<usize>kp << 3);
  const sp = corr + (<usize>blocks << 5);
  for (let p = 0; p < n; p += NR) {
    const cols = min(NR, n - p);
    fillPanel7(panel, corr, sp, w, scales, kind, bs, p, cols, blocks, kRow);
    const bias8 = bias ? bias + (<usize>p << 2) : 0;
    for (let i = 0; i < m; i += MR) {
      tile7(c + <usize>i * ldcB + (<usize>p << 2), ldcB, work + <usize>i * <usize>kp, panel, corr, sp, blocks, bs >> 2, rs + <usize>i * <usize>blocks * 4, bias8, flags, min(MR, m - i), cols);
    }
  }
}
