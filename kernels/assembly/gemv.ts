// Matrix-vector products y[N] = W[N, K] · x[K] over row-major weights: the memory-bound heart of a decode step.
//
// Quantised weights use onnxruntime's MatMulNBits layout [N, blocks, bs·bits/8] with scales f32[N·blocks]:
// int4 codes as in the file (low nibble first, zero point 8); int8 codes stored signed (code − 128, XORed once
// at load, shared/kernel/weights.ts). Activations come quantised per block by quantizeActivations
// (activations.ts), so each block is an integer dot product:
//   y[n] = Σ_b scale[n,b] · sx[b] · (Σ_k code[n,k]·q[k] − corr[b])      (corr = 8·Σq for int4, 0 for int8)
// Four blocks are reduced together (transposeAdd) so the float epilogue costs one vector op per four blocks.
import { X4_CHUNK } from "./activations";
import { hsumF, hsumI, madd, transposeAdd } from "./simd";

/** y = W·x for fp32 W[n, k] (k need not be a multiple of 4). */
export function gemvF32(y: usize, w: usize, x: usize, n: i32, k: i32): void {
  const rowBytes = <usize>k << 2;
  for (let r = 0; r < n; r++) {
    const row = w + <usize>r * rowBytes;
    let a0 = f32x4.splat(0);
    let a1 = f32x4.splat(0);
    let a2 = f32x4.splat(0);
    let a3 = f32x4.splat(0);
    let i = 0;
    for (; i + 16 <= k; i += 16) {
      const o = <usize>i << 2;
      a0 = madd(v128.load(row + o), v128.load(x + o), a0);
      a1 = madd(v128.load(row + o, 16), v128.load(x + o, 16), a1);
      a2 = madd(v128.load(row + o, 32), v128.load(x + o, 32), a2);
      a3 = madd(v128.load(row + o, 48), v128.load(x + o, 48), a3);
    }
    for (; i + 4 <= k; i += 4) a0 = madd(v128.load(row + (<usize>i << 2)), v128.load(x + (<usize>i << 2)), a0);
    let s = hsumF(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
    for (; i < k; i++) s += load<f32>(row + (<usize>i << 2)) * load<f32>(x + (<usize>i << 2));
    store<f32>(y + (<usize>r << 2), s);
  }
}

// The nibble mask, read from memory once per call so that V8 keeps it in a register (it does not hoist SIMD
// constants out of loops): 0x0f per byte for the relaxed build, 0x000f per i16 lane for the plain one.
const MASK = ASC_FEATURE_RELAXED_SIMD
  ? memory.data<u8>([15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15], 16)
  : memory.data<u16>([15, 15, 15, 15, 15, 15, 15, 15], 16);

/**
 * acc (i32 lanes) + Σ code·q over one 16-byte chunk `v` of int4 codes (32 values). Relaxed SIMD: 8-bit dot
 * products with accumulate (nibbles 0..15 are valid 7-bit operands, so the result is exact on every engine);
 * in workerd here this measured 15–25 % faster than summing the two products in i16 lanes and widening once
 * (CPUs with AVX-VNNI can do it in one instruction). Plain SIMD: the four nibbles of each i16 lane, 16-bit dots.
 */
// @ts-ignore: decorator
@inline function dot4(v: v128, xq: usize, acc: v128, mask: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    acc = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(xq), v128.and(v, mask), acc);
    return i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(xq, 16), v128.and(i16x8.shr_u(v, 4), mask), acc);
  }
  const a = i32x4.dot_i16x8_s(v128.and(v, mask), v128.load(xq));
  const b = i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(v, 4), mask), v128.load(xq, 16));
  const c = i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(v, 8), mask), v128.load(xq, 32));
  const d = i32x4.dot_i16x8_s(i16x8.shr_u(v, 12), v128.load(xq, 48));
  return i32x4.add(acc, i32x4.add(i32x4.add(a, b), i32x4.add(c, d)));
}

/** acc + Σ code·q over one 16-byte chunk of signed int8 codes (16 values); plain SIMD, q as i16. */
// @ts-ignore: decorator
@inline function dot8(v: v128, xq: usize, acc: v128): v128 {
  const a = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v), v128.load(xq));
  return i32x4.add(acc, i32x4.add(a, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v), v128.load(xq, 16))));
}

/**
 * Integer dot of one block: `chunks` 16-byte chunks of codes against their activation codes (block sizes 32
 * and 64 unroll). int8 with relaxed SIMD: q = l − 128·g with l in [0, 127] and g in {0, 1}, both valid 7-bit
 * operands, each accumulated over the block by 8-bit dot products.
 */
// @ts-ignore: decorator
@inline function blockDot(bits: i32, w: usize, xq: usize, chunks: i32, mask: v128): v128 {
  const xStep: usize = bits == 4 ? X4_CHUNK : 32;
  const zero = i32x4.splat(0);
  if (ASC_FEATURE_RELAXED_SIMD) {
    if (bits == 8) {
      let l = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(w), v128.load(xq), zero);
      let g = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(w), v128.load(xq, 16), zero);
      for (let c = 1; c < chunks; c++) {
        const v = v128.load(w + 16 * c);
        l = i32x4.relaxed_dot_i8x16_i7x16_add_s(v, v128.load(xq + xStep * c), l);
        g = i32x4.relaxed_dot_i8x16_i7x16_add_s(v, v128.load(xq + xStep * c, 16), g);
      }
      return i32x4.sub(l, i32x4.shl(g, 7));
    }
  }
  let d = bits == 4 ? dot4(v128.load(w), xq, zero, mask) : dot8(v128.load(w), xq, zero);
  if (chunks == 1) return d;
  d = bits == 4 ? dot4(v128.load(w, 16), xq + xStep, d, mask) : dot8(v128.load(w, 16), xq + xStep, d);
  for (let c = 2; c < chunks; c++) {
    const v = v128.load(w + 16 * c);
    d = bits == 4 ? dot4(v, xq + xStep * c, d, mask) : dot8(v, xq + xStep * c, d);
  }
  return d;
}

/** Σ over four blocks of dot·scale·sx as f32 lanes (one lane per block), added to `acc`. */
// @ts-ignore: decorator
@inline function epilogue(acc: v128, d0: v128, d1: v128, d2: v128, d3: v128, sp: usize, sx: usize, corr: usize): v128 {
  const dots = f32x4.convert_i32x4_s(i32x4.sub(transposeAdd(d0, d1, d2, d3), v128.load(corr)));
  return madd(dots, f32x4.mul(v128.load(sp), v128.load(sx)), acc);
}

/**
 * One row, or two (`pair`: the second at wp2/sp2/y2), over blocks [0, blocks): Σ_b scale·sx·(dot − corr);
 * writes y, or adds to it (accumulate). Two rows share each load of the activation codes.
 */
// @ts-ignore: decorator
@inline function rowQ(bits: i32, pair: bool, wp: usize, sp: usize, wp2: usize, sp2: usize, xq: usize, sx: usize, corr: usize, blocks: i32, chunks: i32, mask: v128, y: usize, y2: usize, accumulate: bool): void {
  const blockBytes = <usize>chunks << 4;
  const xBlock: usize = <usize>chunks * (bits == 4 ? X4_CHUNK : 32);
  let xp = xq;
  let acc = f32x4.splat(0);
  let acc2 = f32x4.splat(0);
  let b = 0;
  for (; b + 4 <= blocks; b += 4) {
    const o = <usize>b << 2;
    acc = epilogue(acc,
      blockDot(bits, wp, xp, chunks, mask),
      blockDot(bits, wp + blockBytes, xp + xBlock, chunks, mask),
      blockDot(bits, wp + 2 * blockBytes, xp + 2 * xBlock, chunks, mask),
      blockDot(bits, wp + 3 * blockBytes, xp + 3 * xBlock, chunks, mask), sp + o, sx + o, corr + o);
    if (pair) {
      acc2 = epilogue(acc2,
        blockDot(bits, wp2, xp, chunks, mask),
        blockDot(bits, wp2 + blockBytes, xp + xBlock, chunks, mask),
        blockDot(bits, wp2 + 2 * blockBytes, xp + 2 * xBlock, chunks, mask),
        blockDot(bits, wp2 + 3 * blockBytes, xp + 3 * xBlock, chunks, mask), sp2 + o, sx + o, corr + o);
      wp2 += 4 * blockBytes;
    }
    wp += 4 * blockBytes;
    xp += 4 * xBlock;
  }
  let s = hsumF(acc);
  let s2 = hsumF(acc2);
  for (; b < blocks; b++) {
    const o = <usize>b << 2;
    const xs = load<f32>(sx + o);
    const z = load<i32>(corr + o);
    s += load<f32>(sp + o) * xs * <f32>(hsumI(blockDot(bits, wp, xp, chunks, mask)) - z);
    if (pair) {
      s2 += load<f32>(sp2 + o) * xs * <f32>(hsumI(blockDot(bits, wp2, xp, chunks, mask)) - z);
      wp2 += blockBytes;
    }
    wp += blockBytes;
    xp += xBlock;
  }
  store<f32>(y, accumulate ? load<f32>(y) + s : s);
  if (pair) store<f32>(y2, accumulate ? load<f32>(y2) + s2 : s2);
}

/** Values of K per pass for int8: longer rows are split so the activation codes stay in L1. */
const K_TILE_8 = 8192;

/**
 * Shared body of the int4/int8 kernels (bits is a constant at each call site, so each inlines its own).
 * Weights must be read as few ascending streams, the pattern hardware prefetchers follow: interleaving
 * neighbouring rows was faster from cache but up to 2× slower from DRAM, where decoding reads. int4 pairs
 * row r with row r + n/2 (two streams, one load of the activations for both); int8 goes row by row (its
 * block needs twice the accumulators, and two rows spill).
 */
// @ts-ignore: decorator
@inline function gemvQ(bits: i32, y: usize, w: usize, scales: usize, xq: usize, sx: usize, corr: usize, n: i32, k: i32, bs: i32): void {
  const blocks = (k + bs - 1) / bs;
  const chunks = (bs * bits) >> 7; // 16-byte chunks per block
  const blockBytes = <usize>(chunks << 4);
  const xBlock: usize = <usize>chunks * (bits == 4 ? X4_CHUNK : 32);
  const tile = bits == 8 ? max(4, (K_TILE_8 / bs) & ~3) : blocks; // blocks per pass
  const wStride = <usize>blocks * blockBytes;
  const sStride = <usize>blocks << 2;
  const mask = v128.load(MASK);
  const half = bits == 4 ? n >> 1 : 0; // rows [0, half) are paired with [half, 2·half)
  for (let b0 = 0; b0 < blocks; b0 += tile) {
    const nb = min(tile, blocks - b0);
    const xt = xq + <usize>b0 * xBlock;
    const sxt = sx + (<usize>b0 << 2);
    const ct = corr + (<usize>b0 << 2);
    const acc = b0 > 0;
    for (let r = 0; r < half; r++) {
      const wp = w + <usize>r * wStride + <usize>b0 * blockBytes;
      const sp = scales + <usize>r * sStride + (<usize>b0 << 2);
      const wp2 = wp + <usize>half * wStride;
      const sp2 = sp + <usize>half * sStride;
      const yp = y + (<usize>r << 2);
      const yp2 = yp + (<usize>half << 2);
      if (chunks == 1) rowQ(bits, true, wp, sp, wp2, sp2, xt, sxt, ct, nb, 1, mask, yp, yp2, acc);
      else if (chunks == 2) rowQ(bits, true, wp, sp, wp2, sp2, xt, sxt, ct, nb, 2, mask, yp, yp2, acc);
      else rowQ(bits, true, wp, sp, wp2, sp2, xt, sxt, ct, nb, chunks, mask, yp, yp2, acc);
    }
    for (let r = 2 * half; r < n; r++) {
      const wp = w + <usize>r * wStride + <usize>b0 * blockBytes;
      const sp = scales + <usize>r * sStride + (<usize>b0 << 2);
      const yp = y + (<usize>r << 2);
      if (chunks == 1) rowQ(bits, false, wp, sp, 0, 0, xt, sxt, ct, nb, 1, mask, yp, 0, acc);
      else if (chunks == 2) rowQ(bits, false, wp, sp, 0, 0, xt, sxt, ct, nb, 2, mask, yp, 0, acc);
      else rowQ(bits, false, wp, sp, 0, 0, xt, sxt, ct, nb, chunks, mask, yp, 0, acc);
    }
  }
}

/** y = W·x for int4 W (MatMulNBits layout, block size a multiple of 32) and activations from quantizeActivations(…, 4). */
export function gemvQ4(y: usize, w: usize, scales: usize, xq: usize, sx: usize, corr: usize, n: i32, k: i32, bs: i32): void {
  gemvQ(4, y, w, scales, xq, sx, corr, n, k, bs);
}

/** y = W·x for int8 W (MatMulNBits layout, block size a multiple of 16) and activations from quantizeActivations(…, 8). */
export function gemvQ8(y: usize, w: usize, scales: usize, xq: usize, sx: usize, corr: usize, n: i32, k: i32, bs: i32): void {
  gemvQ(8, y, w, scales, xq, sx, corr, n, k, bs);
}
