// Multi-vector GEMVs: y_v = W · x_v for nv vectors (the sessions of a batched decode step) in one pass over W.
// W is walked once per call; each 16-byte chunk of codes is loaded and split (nibbles, widening: the part of the
// work that does not depend on x) once per pair of vectors, whose products share it in registers. Each output keeps
// the summation order of the single GEMV (gemv.ts): the per-block integer dots are exact (integers, so any order
// gives the same value), and the float epilogue, tails and int8 K passes are the same operations in the same
// order, so every y_v is bit-identical to gemvF32 / gemvQ4 / gemvQ8 of x_v alone.
//
// Vectors come as a table at `tab`: nv entries of four u32 (16 bytes): y, then the vector's operands
// (fp32: x; int8/int4: xq, sx, corr, as quantizeActivations writes them).
import { X4_CHUNK } from "./activations";
import { hsumF, hsumI, madd, transposeAdd } from "./simd";

const MASK8 = memory.data<u8>([15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15], 16);
const MASK16 = memory.data<u16>([15, 15, 15, 15, 15, 15, 15, 15], 16);

// @ts-ignore: decorator
@inline function ptr(tab: usize, v: i32, j: i32): usize {
  return <usize>load<u32>(tab + (<usize>v << 4) + (<usize>j << 2));
}

/** One fp32 row into one vector, or two (`pair`): gemvF32's arithmetic per vector, each weight load shared. */
// @ts-ignore: decorator
@inline function rowF32(pair: bool, row: usize, x: usize, x2: usize, k: i32, y: usize, y2: usize): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
  let i = 0;
  for (; i + 16 <= k; i += 16) {
    const o = <usize>i << 2;
    const w0 = v128.load(row + o), w1 = v128.load(row + o, 16), w2 = v128.load(row + o, 32), w3 = v128.load(row + o, 48);
    a0 = madd(w0, v128.load(x + o), a0);
    a1 = madd(w1, v128.load(x + o, 16), a1);
    a2 = madd(w2, v128.load(x + o, 32), a2);
    a3 = madd(w3, v128.load(x + o, 48), a3);
    if (pair) {
      b0 = madd(w0, v128.load(x2 + o), b0);
      b1 = madd(w1, v128.load(x2 + o, 16), b1);
      b2 = madd(w2, v128.load(x2 + o, 32), b2);
      b3 = madd(w3, v128.load(x2 + o, 48), b3);
    }
  }
  for (; i + 4 <= k; i += 4) {
    const o = <usize>i << 2;
    const w0 = v128.load(row + o);
    a0 = madd(w0, v128.load(x + o), a0);
    if (pair) b0 = madd(w0, v128.load(x2 + o), b0);
  }
  let s = hsumF(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
  let s2 = hsumF(f32x4.add(f32x4.add(b0, b1), f32x4.add(b2, b3)));
  for (; i < k; i++) {
    const wv = load<f32>(row + (<usize>i << 2));
    s += wv * load<f32>(x + (<usize>i << 2));
    if (pair) s2 += wv * load<f32>(x2 + (<usize>i << 2));
  }
  store<f32>(y, s);
  if (pair) store<f32>(y2, s2);
}

/** y_v = W·x_v for fp32 W[n, k] and the nv vectors of `tab` (bit-identical to gemvF32 per vector). */
export function gemvF32N(tab: usize, w: usize, n: i32, k: i32, nv: i32): void {
  const rowBytes = <usize>k << 2;
  for (let r = 0; r < n; r++) {
    const row = w + <usize>r * rowBytes;
    const yo = <usize>r << 2;
    let v = 0;
    for (; v + 2 <= nv; v += 2) rowF32(true, row, ptr(tab, v, 1), ptr(tab, v + 1, 1), k, ptr(tab, v, 0) + yo, ptr(tab, v + 1, 0) + yo);
    if (v < nv) rowF32(false, row, ptr(tab, v, 1), 0, k, ptr(tab, v, 0) + yo, 0);
  }
}

/**
 * d + the integer dot of one 16-byte chunk of codes, already split into registers p0…p3 (relaxed int4: low and
 * high nibbles as i8; relaxed int8: the codes; plain int4: the four nibble planes as i16; plain int8: the codes
 * widened to i16), with the activation codes at xq: the same integers as gemv.ts's dot4 / dot8 / blockDot.
 */
// @ts-ignore: decorator
@inline function dotU(bits: i32, p0: v128, p1: v128, p2: v128, p3: v128, xq: usize, d: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    if (bits == 4) return i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(xq, 16), p1, i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(xq), p0, d));
    const zero = i32x4.splat(0);
    const l = i32x4.relaxed_dot_i8x16_i7x16_add_s(p0, v128.load(xq), zero);
    const g = i32x4.relaxed_dot_i8x16_i7x16_add_s(p0, v128.load(xq, 16), zero);
    return i32x4.add(d, i32x4.sub(l, i32x4.shl(g, 7)));
  }
  const a = i32x4.add(i32x4.dot_i16x8_s(p0, v128.load(xq)), i32x4.dot_i16x8_s(p1, v128.load(xq, 16)));
  if (bits == 8) return i32x4.add(d, a);
  return i32x4.add(d, i32x4.add(a, i32x4.add(i32x4.dot_i16x8_s(p2, v128.load(xq, 32)), i32x4.dot_i16x8_s(p3, v128.load(xq, 48)))));
}

// @ts-ignore: decorator
@inline function epilogue(acc: v128, d0: v128, d1: v128, d2: v128, d3: v128, sp: usize, sx: usize, corr: usize): v128 {
  const dots = f32x4.convert_i32x4_s(i32x4.sub(transposeAdd(d0, d1, d2, d3), v128.load(corr)));
  return madd(dots, f32x4.mul(v128.load(sp), v128.load(sx)), acc);
}

/** Plane j of a 16-byte chunk of codes, as dotU takes them. */
// @ts-ignore: decorator
@inline function splitChunk(bits: i32, v: v128, m: v128, j: i32): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return bits == 8 ? v : j == 0 ? v128.and(v, m) : v128.and(i16x8.shr_u(v, 4), m);
  if (bits == 8) return j == 0 ? i16x8.extend_low_i8x16_s(v) : i16x8.extend_high_i8x16_s(v);
  return j == 3 ? i16x8.shr_u(v, 12) : v128.and(i16x8.shr_u(v, 4 * j), m);
}

/**
 * One row's pass over blocks [0, nb) for one vector, or two (`pair`), writing (or adding to, `accumulate`) y and
 * y2: the arithmetic of gemv.ts's rowQ for one row, per vector, each chunk of codes loaded and split once.
 */
// @ts-ignore: decorator
@inline function passQ(bits: i32, pair: bool, wp: usize, sp: usize, xq: usize, sx: usize, corr: usize, xq2: usize, sx2: usize, corr2: usize, nb: i32, chunks: i32, m: v128, y: usize, y2: usize, accumulate: bool): void {
  const xc: usize = bits == 4 ? X4_CHUNK : 32; // activation bytes per chunk
  const xBlock = <usize>chunks * xc;
  const zero = i32x4.splat(0);
  let acc = f32x4.splat(0);
  let acc2 = f32x4.splat(0);
  let b = 0;
  for (; b + 4 <= nb; b += 4) {
    let a0 = zero, a1 = zero, a2 = zero, a3 = zero, b0 = zero, b1 = zero, b2 = zero, b3 = zero;
    for (let c = 0; c < chunks; c++) {
      const xo = <usize>c * xc;
      let v = v128.load(wp + (<usize>c << 4));
      let p0 = splitChunk(bits, v, m, 0), p1 = splitChunk(bits, v, m, 1), p2 = splitChunk(bits, v, m, 2), p3 = splitChunk(bits, v, m, 3);
      a0 = dotU(bits, p0, p1, p2, p3, xq + xo, a0);
      if (pair) b0 = dotU(bits, p0, p1, p2, p3, xq2 + xo, b0);
      v = v128.load(wp + (<usize>(chunks + c) << 4));
      p0 = splitChunk(bits, v, m, 0); p1 = splitChunk(bits, v, m, 1); p2 = splitChunk(bits, v, m, 2); p3 = splitChunk(bits, v, m, 3);
      a1 = dotU(bits, p0, p1, p2, p3, xq + xo + xBlock, a1);
      if (pair) b1 = dotU(bits, p0, p1, p2, p3, xq2 + xo + xBlock, b1);
      v = v128.load(wp + (<usize>(2 * chunks + c) << 4));
      p0 = splitChunk(bits, v, m, 0); p1 = splitChunk(bits, v, m, 1); p2 = splitChunk(bits, v, m, 2); p3 = splitChunk(bits, v, m, 3);
      a2 = dotU(bits, p0, p1, p2, p3, xq + xo + 2 * xBlock, a2);
      if (pair) b2 = dotU(bits, p0, p1, p2, p3, xq2 + xo + 2 * xBlock, b2);
      v = v128.load(wp + (<usize>(3 * chunks + c) << 4));
      p0 = splitChunk(bits, v, m, 0); p1 = splitChunk(bits, v, m, 1); p2 = splitChunk(bits, v, m, 2); p3 = splitChunk(bits, v, m, 3);
      a3 = dotU(bits, p0, p1, p2, p3, xq + xo + 3 * xBlock, a3);
      if (pair) b3 = dotU(bits, p0, p1, p2, p3, xq2 + xo + 3 * xBlock, b3);
    }
    const o = <usize>b << 2;
    acc = epilogue(acc, a0, a1, a2, a3, sp + o, sx + o, corr + o);
    if (pair) acc2 = epilogue(acc2, b0, b1, b2, b3, sp + o, sx2 + o, corr2 + o);
    wp += <usize>(4 * chunks) << 4;
    xq += 4 * xBlock;
    xq2 += 4 * xBlock;
  }
  let s = hsumF(acc);
  let s2 = hsumF(acc2);
  for (; b < nb; b++) {
    const o = <usize>b << 2;
    let da = zero, db = zero;
    for (let c = 0; c < chunks; c++) {
      const v = v128.load(wp + (<usize>c << 4));
      const p0 = splitChunk(bits, v, m, 0), p1 = splitChunk(bits, v, m, 1), p2 = splitChunk(bits, v, m, 2), p3 = splitChunk(bits, v, m, 3);
      da = dotU(bits, p0, p1, p2, p3, xq + <usize>c * xc, da);
      if (pair) db = dotU(bits, p0, p1, p2, p3, xq2 + <usize>c * xc, db);
    }
    s += load<f32>(sp + o) * load<f32>(sx + o) * <f32>(hsumI(da) - load<i32>(corr + o));
    if (pair) s2 += load<f32>(sp + o) * load<f32>(sx2 + o) * <f32>(hsumI(db) - load<i32>(corr2 + o));
    wp += <usize>chunks << 4;
    xq += xBlock;
    xq2 += xBlock;
  }
  store<f32>(y, accumulate ? load<f32>(y) + s : s);
  if (pair) store<f32>(y2, accumulate ? load<f32>(y2) + s2 : s2);
}

/** Values of K per pass for int8, as gemv.ts's K_TILE_8 (its passes add into y: the same order here). */
const K_TILE_8 = 8192;

// @ts-ignore: decorator
@inline function gemvQN(bits: i32, tab: usize, w: usize, scales: usize, n: i32, k: i32, bs: i32, nv: i32): void {
  const blocks = (k + bs - 1) / bs;
  const chunks = (bs * bits) >> 7;
  const blockBytes = <usize>(chunks << 4);
  const xBlock: usize = <usize>chunks * (bits == 4 ? X4_CHUNK : 32);
  const tile = bits == 8 ? max(4, (K_TILE_8 / bs) & ~3) : blocks;
  const m = ASC_FEATURE_RELAXED_SIMD ? v128.load(MASK8) : v128.load(MASK16);
  for (let b0 = 0; b0 < blocks; b0 += tile) {
    const nb = min(tile, blocks - b0);
    const o = <usize>b0 << 2;
    const xo = <usize>b0 * xBlock;
    const acc = b0 > 0;
    for (let r = 0; r < n; r++) {
      const wp = w + (<usize>r * <usize>blocks + <usize>b0) * blockBytes;
      const sp = scales + ((<usize>r * <usize>blocks) << 2) + o;
      const yo = <usize>r << 2;
      let v = 0;
      for (; v + 2 <= nv; v += 2) {
        const xa = ptr(tab, v, 1) + xo, sa = ptr(tab, v, 2) + o, ca = ptr(tab, v, 3) + o;
        const xb = ptr(tab, v + 1, 1) + xo, sb = ptr(tab, v + 1, 2) + o, cb = ptr(tab, v + 1, 3) + o;
        if (chunks == 1) passQ(bits, true, wp, sp, xa, sa, ca, xb, sb, cb, nb, 1, m, ptr(tab, v, 0) + yo, ptr(tab, v + 1, 0) + yo, acc);
        else if (chunks == 2) passQ(bits, true, wp, sp, xa, sa, ca, xb, sb, cb, nb, 2, m, ptr(tab, v, 0) + yo, ptr(tab, v + 1, 0) + yo, acc);
        else passQ(bits, true, wp, sp, xa, sa, ca, xb, sb, cb, nb, chunks, m, ptr(tab, v, 0) + yo, ptr(tab, v + 1, 0) + yo, acc);
      }
      if (v < nv) passQ(bits, false, wp, sp, ptr(tab, v, 1) + xo, ptr(tab, v, 2) + o, ptr(tab, v, 3) + o, 0, 0, 0, nb, chunks, m, ptr(tab, v, 0) + yo, 0, acc);
    }
  }
}

/** y_v = W·x_v for int4 W and the nv vectors of `tab` (quantizeActivations(…, 4)). */
export function gemvQ4N(tab: usize, w: usize, scales: usize, n: i32, k: i32, bs: i32, nv: i32): void {
  gemvQN(4, tab, w, scales, n, k, bs, nv);
}

/** y_v = W·x_v for int8 W and the nv vectors of `tab` (quantizeActivations(…, 8)). */
export function gemvQ8N(tab: usize, w: usize, scales: usize, n: i32, k: i32, bs: i32, nv: i32): void {
  gemvQN(8, tab, w, scales, n, k, bs, nv);
}
