// The operands of kernels/assembly/gemm-q4.ts, built per call in caller scratch (kp = k rounded up to whole
// weight blocks, chunks = kp / 32):
//   A packed  [⌈m / 6⌉ tiles][kp / 4 quads][6 rows] × 4 int8 (A quantised per row and chunk to ±127, rows past m
//             zero), then per tile and chunk TERMS bytes: f32[6] scales sA = max|A| / 127, and the zero-point
//             terms of storeZero as i32[6] int16 pairs and i32[6] totals: [⌈m / 6⌉][chunks][18] × 4 bytes;
//   W panel   [kp / 4 quads][8 columns] × 4 codes 0..15, then the scales f32[chunks][8] (0 past the last column).
import { transpose4 } from "./simd";

export const NR = 8; // columns per panel
export const MR = 6; // rows per tile
export const CHUNK = 32; // k per int16 accumulation (8 quads: 8 · 3810 < 32767)
export const TERMS = MR * 12; // bytes of one tile's per-chunk terms
const LEVELS: f32 = 127;

// 1.5 · 2²³: a float |x| < 2²² plus this rounds x to an integer (to nearest, ties to even: f32x4.nearest's
// rounding) in the low mantissa bits, so that bits(x + MAGIC) − bits(MAGIC) is that integer as i32.
const MAGIC: f32 = 12582912;

/** nearest(x) as i32 lanes for |x| < 2²² (two plain-SIMD instructions; trunc_sat is about eight in V8). */
// @ts-ignore: decorator
@inline function roundToInt(x: v128): v128 {
  return i32x4.sub(f32x4.add(x, f32x4.splat(MAGIC)), i32x4.splat(0x4b400000));
}

/**
 * The accumulators' start for one row and chunk, −8 · Σ qA (the zero point), in the two forms gemm-q4.ts's
 * dot products add to: two int16 lanes per column, −8 · (Σ of the pairs each sums) (|·| ≤ 8 · 16 · 127 = 16256,
 * and every partial sum stays within 16 · 127 · 8 of it: no int16 overflow), and the int32 total. se / so: Σ qA
 * over the k ≡ 0, 1 and ≡ 2, 3 (mod 4) of the chunk. Stored at `at` + MR · 4 and `at` + MR · 8.
 */
// @ts-ignore: decorator
@inline function storeZero(at: usize, se: i32, so: i32): void {
  store<i32>(at, ((-8 * se) & 0xffff) | ((-8 * so) << 16), MR * 4);
  store<i32>(at, -8 * (se + so), MR * 8);
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
    const rsr = rs + <usize>(r / MR) * <usize>chunks * TERMS + (<usize>(r % MR) << 2);
    if (r >= m) {
      for (let t = 0; t < kp; t += 4) store<u32>(out + <usize>(t >> 2) * (MR * 4), 0);
      for (let h = 0; h < chunks; h++) {
        store<f32>(rsr + <usize>h * TERMS, 0);
        storeZero(rsr + <usize>h * TERMS, 0, 0);
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
      store<f32>(rsr + <usize>h * TERMS, amax / LEVELS);
      storeZero(rsr + <usize>h * TERMS, se, so);
    }
  }
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
export function fillPanel4(panel: usize, sp: usize, w: usize, scales: usize, bs: i32, p: i32, cols: i32, kp: i32, kRow: i32): void {
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
