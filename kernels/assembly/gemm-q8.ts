// The integer GEMM for int8 MatMulNBits weights with signed int8 activations: C[m, n] = A[m, k] · Wᵀ (+ bias),
//   C[r][c] = Σ_chunks sA[r][h] · sW[c][h] · Σ_{kk in h} qA[r][kk] · w[c][kk]
// with w ∈ [−128, 127] the stored codes, qA and sA as gemm-q4.ts quantises them (packQuantA4, chunks of 32).
// The weights enter relaxed SIMD's i32x4.relaxed_dot_i8x16_i7x16_add_s as the unsigned operand u = w + 128
// (Σ qA · w = Σ qA · u − 128 · Σ qA, the last term from packQuantA4's per-chunk sums), in one of two forms:
//   full  — u itself, all 8 bits: exact only where the dot product is AVX-VNNI's vpdpbusd (u8 × s8, four
//           products and the accumulator summed in int32, no saturation), which {@link fullDot} checks; one
//           vpdpbusd per 16 products, as gemm-q4.ts's wide form;
//   split — u = l + 128 · g with l = u & 127 and g = u >> 7 (both 7-bit operands, so exact and deterministic on
//           every engine): per chunk the dots against g first, the sums shifted left by 7, then the dots
//           against l added (|·| ≤ 32 · 128 · 255 per chunk: no int32 overflow); two dots per 16 products.
// The panel holds both forms' codes per 8 columns, filled once per panel and used by every row tile.
// Layout: panel [kp / 4 quads][8 columns] × 4 bytes (u in the full form, l in the split one), the split form's
// g the same at panel + 8 · kp, the scales f32[chunks][8] at panel + 16 · kp: 17 · kp bytes.
import { put } from "./gemm";
import { CHUNK, MR, NR, packQuantA4, TERMS } from "./gemm-q4-pack";
import { transpose4 } from "./simd";

// The float accumulators of one 6 × 8 tile (the integer ones fill the registers).
const FT = memory.data(MR * NR * 4, 16);
// fullDot's probe operands, in memory so that the optimiser cannot fold it: signed bytes, then unsigned ones
// over the whole range (255, 128, 200, 1 per lane).
const PROBE = memory.data<u8>([0x80, 0x80, 0x80, 0x80, 127, 127, 127, 127, 0x80, 127, 0xff, 1, 0xc5, 0x3b, 0x80, 127, 255, 255, 255, 255, 255, 255, 255, 255, 128, 200, 255, 1, 255, 128, 200, 255], 16);

/**
 * True when this engine's i32x4.relaxed_dot_i8x16_i7x16_add_s is vpdpbusd over the whole unsigned byte range:
 * the known answers below hold only for an exact u8 × s8 sum (pmaddubsw saturates its pairs, Arm's sdot reads
 * the second operand as signed).
 */
export function fullDot(): bool {
  if (!ASC_FEATURE_RELAXED_SIMD) return false;
  const r = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(PROBE), v128.load(PROBE, 16), i32x4.splat(7));
  // 4 · 255 · −128, 4 · 255 · 127, −128 · 128 + 127 · 200 − 255 + 1, −59 · 255 + 59 · 128 − 128 · 200 + 127 · 255
  return i32x4.extract_lane(r, 0) == -130553 && i32x4.extract_lane(r, 1) == 129547 && i32x4.extract_lane(r, 2) == 8769 && i32x4.extract_lane(r, 3) == -701;
}

/** acc + per column j of four: Σ_{i = 4j…4j+3} x[i] · u[i] (x signed bytes, u bytes), as i32 lanes. */
// @ts-ignore: decorator
@inline function dot4(x: v128, u: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.relaxed_dot_i8x16_i7x16_add_s(x, u, acc);
  const lo = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(x), i16x8.extend_low_i8x16_u(u)); // pair sums of bytes 0..7
  const hi = i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(x), i16x8.extend_high_i8x16_u(u));
  return i32x4.add(acc, i32x4.add(v128.shuffle<u32>(lo, hi, 0, 2, 4, 6), v128.shuffle<u32>(lo, hi, 1, 3, 5, 7)));
}

/** FT[at] += f32(acc) · s. */
// @ts-ignore: decorator
@inline function scaleAdd(at: usize, acc: v128, s: v128): void {
  v128.store(FT + at, f32x4.add(v128.load(FT + at), f32x4.mul(f32x4.convert_i32x4_s(acc), s)));
}

/** −128 · Σ qA of one row and chunk (16 × storeZero's int32 total, −8 · Σ qA), in every lane. */
// @ts-ignore: decorator
@inline function zero(z: usize, row: i32): v128 {
  return i32x4.shl(v128.load32_splat(z + (<usize>row << 2)), 4);
}

/**
 * Six packed rows (ap, terms rs) × one panel (bp, its g codes at bp + gOff, scales sp); `rows` ≤ 6 of them
 * written to C (ldc bytes apart). `split` picks the form (a constant at each call).
 */
// @ts-ignore: decorator
@inline function tile8(c: usize, ldc: usize, ap: usize, bp: usize, gOff: usize, sp: usize, chunks: i32, rs: usize, bias: usize, flags: i32, rows: i32, cols: i32, split: bool): void {
  memory.fill(FT, 0, MR * NR * 4);
  for (let h = 0; h < chunks; h++) {
    const z = rs + MR * 8;
    let c00 = i32x4.splat(0), c10 = c00, c20 = c00, c30 = c00, c40 = c00, c50 = c00;
    if (!split) {
      c00 = zero(z, 0); c10 = zero(z, 1); c20 = zero(z, 2); c30 = zero(z, 3); c40 = zero(z, 4); c50 = zero(z, 5);
    }
    let c01 = c00, c11 = c10, c21 = c20, c31 = c30, c41 = c40, c51 = c50;
    // split: pass 0 sums against g, pass 1 against l; full: pass 1 only, against u
    for (let pass = split ? 0 : 1; pass < 2; pass++) {
      let q = pass == 0 ? bp + gOff : bp;
      let x0 = ap;
      const end = ap + CHUNK / 4 * MR * 4;
      while (x0 < end) {
        const b0 = v128.load(q);
        const b1 = v128.load(q, 16);
        let x = v128.load32_splat(x0);
        c00 = dot4(x, b0, c00);
        c01 = dot4(x, b1, c01);
        x = v128.load32_splat(x0, 4);
        c10 = dot4(x, b0, c10);
        c11 = dot4(x, b1, c11);
        x = v128.load32_splat(x0, 8);
        c20 = dot4(x, b0, c20);
        c21 = dot4(x, b1, c21);
        x = v128.load32_splat(x0, 12);
        c30 = dot4(x, b0, c30);
        c31 = dot4(x, b1, c31);
        x = v128.load32_splat(x0, 16);
        c40 = dot4(x, b0, c40);
        c41 = dot4(x, b1, c41);
        x = v128.load32_splat(x0, 20);
        c50 = dot4(x, b0, c50);
        c51 = dot4(x, b1, c51);
        q += NR << 2;
        x0 += MR * 4;
      }
      if (pass == 0) {
        // 128 · Σ qA · g, then the zero point: the l pass adds Σ qA · l
        let zr = zero(z, 0);
        c00 = i32x4.add(i32x4.shl(c00, 7), zr); c01 = i32x4.add(i32x4.shl(c01, 7), zr);
        zr = zero(z, 1);
        c10 = i32x4.add(i32x4.shl(c10, 7), zr); c11 = i32x4.add(i32x4.shl(c11, 7), zr);
        zr = zero(z, 2);
        c20 = i32x4.add(i32x4.shl(c20, 7), zr); c21 = i32x4.add(i32x4.shl(c21, 7), zr);
        zr = zero(z, 3);
        c30 = i32x4.add(i32x4.shl(c30, 7), zr); c31 = i32x4.add(i32x4.shl(c31, 7), zr);
        zr = zero(z, 4);
        c40 = i32x4.add(i32x4.shl(c40, 7), zr); c41 = i32x4.add(i32x4.shl(c41, 7), zr);
        zr = zero(z, 5);
        c50 = i32x4.add(i32x4.shl(c50, 7), zr); c51 = i32x4.add(i32x4.shl(c51, 7), zr);
      }
    }
    ap += CHUNK / 4 * MR * 4;
    bp += CHUNK / 4 * (NR << 2);
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
    rs += TERMS;
  }
  for (let r = 0; r < rows; r++) {
    const t = FT + (<usize>r << 5);
    put(c + <usize>r * ldc, v128.load(t), v128.load(t, 16), bias, flags, cols);
  }
}

/** The low 7 bits (split) or all 8 (full) of 16 codes + 128. */
// @ts-ignore: decorator
@inline function low(v: v128, split: bool): v128 {
  return split ? v128.and(v, i8x16.splat(127)) : v;
}

/**
 * The panel of W's rows [p, p + cols) (layout above): their first kp codes + 128 (a row's stored blocks are
 * contiguous, bs bytes each), split into l and g when `split`, and the scale of each chunk's block.
 */
function fillPanel8(panel: usize, w: usize, scales: usize, bs: i32, p: i32, cols: i32, kp: i32, kRow: i32, split: bool): void {
  const rowBlocks = (kRow + bs - 1) / bs;
  const rowBytes = <usize>rowBlocks * <usize>bs;
  const gOff = <usize>kp << 3;
  const flip = i8x16.splat(-128); // w ^ 0x80 = w + 128 as an unsigned byte
  for (let g = 0; g < NR; g += 4) {
    const col = w + <usize>(p + g) * rowBytes;
    for (let t = 0; t < kp; t += 16) {
      const at = col + <usize>t;
      let v0 = flip, v1 = flip, v2 = flip, v3 = flip; // u = 0 past the last column (its scale is 0 too)
      if (g < cols) v0 = v128.load(at);
      if (g + 1 < cols) v1 = v128.load(at + rowBytes);
      if (g + 2 < cols) v2 = v128.load(at + 2 * rowBytes);
      if (g + 3 < cols) v3 = v128.load(at + 3 * rowBytes);
      v0 = v128.xor(v0, flip); v1 = v128.xor(v1, flip); v2 = v128.xor(v2, flip); v3 = v128.xor(v3, flip);
      const dst = panel + (<usize>g << 2) + (<usize>(t >> 2) << 5);
      transpose4(dst, low(v0, split), low(v1, split), low(v2, split), low(v3, split));
      if (split) transpose4(dst + gOff, i8x16.shr_u(v0, 7), i8x16.shr_u(v1, 7), i8x16.shr_u(v2, 7), i8x16.shr_u(v3, 7));
    }
  }
  const sp = panel + (<usize>kp << 4);
  const chunks = kp / CHUNK;
  for (let h = 0; h < chunks; h++) {
    const b = (h * CHUNK) / bs;
    for (let j = 0; j < NR; j++) store<f32>(sp + (<usize>(h * NR + j) << 2), j < cols ? load<f32>(scales + ((<usize>(p + j) * <usize>rowBlocks + <usize>b) << 2)) : 0);
  }
}

/** The product in the form `split` says (inlined once per form, as gemm-q4.ts does). */
// @ts-ignore: decorator
@inline function gemmQ8(c: usize, ldc: i32, a: usize, lda: i32, w: usize, scales: usize, bs: i32, bias: usize, m: i32, n: i32, k: i32, flags: i32, work: usize, panel: usize, kRow: i32, split: bool): void {
  const ldcB = <usize>ldc << 2;
  const kp = ((k + bs - 1) / bs) * bs;
  const chunks = kp / CHUNK;
  const m6 = ((m + MR - 1) / MR) * MR;
  const rs = work + <usize>m6 * <usize>kp;
  packQuantA4(work, rs, a, <usize>lda << 2, m, k, kp);
  const sp = panel + (<usize>kp << 4);
  for (let p = 0; p < n; p += NR) {
    const cols = min(NR, n - p);
    fillPanel8(panel, w, scales, bs, p, cols, kp, kRow, split);
    const bias8 = bias ? bias + (<usize>p << 2) : 0;
    for (let i = 0; i < m; i += MR) {
      const ci = c + <usize>i * ldcB + (<usize>p << 2);
      const ai = work + <usize>i * <usize>kp;
      const ri = rs + <usize>(i / MR) * <usize>chunks * TERMS;
      tile8(ci, ldcB, ai, panel, <usize>kp << 3, sp, chunks, ri, bias8, flags, min(MR, m - i), cols, split);
    }
  }
}

function gemmQ8Full(c: usize, ldc: i32, a: usize, lda: i32, w: usize, scales: usize, bs: i32, bias: usize, m: i32, n: i32, k: i32, flags: i32, work: usize, panel: usize, kRow: i32): void {
  gemmQ8(c, ldc, a, lda, w, scales, bs, bias, m, n, k, flags, work, panel, kRow, false);
}

function gemmQ8Split(c: usize, ldc: i32, a: usize, lda: i32, w: usize, scales: usize, bs: i32, bias: usize, m: i32, n: i32, k: i32, flags: i32, work: usize, panel: usize, kRow: i32): void {
  gemmQ8(c, ldc, a, lda, w, scales, bs, bias, m, n, k, flags, work, panel, kRow, true);
}

/**
 * gemmQ's product (same arguments and flags; kind must be W_Q8, bs a multiple of 32) with int8 activations,
 * in the full form where {@link fullDot} holds, else the split one. work: m6 · kp + 3 · m6 · kp / 8 bytes;
 * panel: 17 · kp bytes (m6 = m rounded up to 6, kp = ⌈k / bs⌉ · bs).
 */
export function gemmQ8A8(c: usize, ldc: i32, a: usize, lda: i32, w: usize, scales: usize, kind: i32, bs: i32, bias: usize, m: i32, n: i32, k: i32, flags: i32, work: usize, panel: usize, kRow: i32): void {
  if (fullDot()) gemmQ8Full(c, ldc, a, lda, w, scales, bs, bias, m, n, k, flags, work, panel, kRow);
  else gemmQ8Split(c, ldc, a, lda, w, scales, bs, bias, m, n, k, flags, work, panel, kRow);
}

/** gemmQ8A8 always in the split form (the same results; for tests and the benchmark where fullDot holds). */
export function gemmQ8A8Split(c: usize, ldc: i32, a: usize, lda: i32, w: usize, scales: usize, kind: i32, bs: i32, bias: usize, m: i32, n: i32, k: i32, flags: i32, work: usize, panel: usize, kRow: i32): void {
  gemmQ8Split(c, ldc, a, lda, w, scales, bs, bias, m, n, k, flags, work, panel, kRow);
}
