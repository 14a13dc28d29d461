// Multi-vector GEMVs: y_v = W · x_v for nv vectors (the sessions of a batched decode step) in one pass over W.
// Each row of W is loaded once, and for int8/int4 unpacked once (nibbles split, codes widened: the part of the
// work that does not depend on x) into a scratch row `u`, then multiplied into every vector. Each output keeps
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

/** Bytes of unpacked codes per 16-byte chunk of stored codes (relaxed int8 uses the stored codes as they are). */
// @ts-ignore: decorator
@inline function uChunk(bits: i32): usize {
  if (ASC_FEATURE_RELAXED_SIMD) return bits == 4 ? 32 : 16;
  return bits == 4 ? 64 : 32;
}

/**
 * Unpacks `chunks` 16-byte chunks of codes at w into u in the order the activation codes are laid out: relaxed
 * int4: i8 low nibbles then i8 high nibbles; plain int4: the four nibble planes as i16 (vector j lane i is
 * k = 4i + j); plain int8: the codes widened to i16 in natural order.
 */
// @ts-ignore: decorator
@inline function unpackRow(bits: i32, u: usize, w: usize, chunks: i32): void {
  if (ASC_FEATURE_RELAXED_SIMD) {
    const m = v128.load(MASK8);
    for (let c = 0; c < chunks; c++) {
      const v = v128.load(w + (<usize>c << 4));
      const o = u + (<usize>c << 5);
      v128.store(o, v128.and(v, m));
      v128.store(o, v128.and(i16x8.shr_u(v, 4), m), 16);
    }
    return;
  }
  const m = v128.load(MASK16);
  for (let c = 0; c < chunks; c++) {
    const v = v128.load(w + (<usize>c << 4));
    if (bits == 4) {
      const o = u + (<usize>c << 6);
      v128.store(o, v128.and(v, m));
      v128.store(o, v128.and(i16x8.shr_u(v, 4), m), 16);
      v128.store(o, v128.and(i16x8.shr_u(v, 8), m), 32);
      v128.store(o, i16x8.shr_u(v, 12), 48);
    } else {
      const o = u + (<usize>c << 5);
      v128.store(o, i16x8.extend_low_i8x16_s(v));
      v128.store(o, i16x8.extend_high_i8x16_s(v), 16);
    }
  }
}

/** The integer dot of one block from unpacked codes: the same integers as gemv.ts's blockDot. */
// @ts-ignore: decorator
@inline function blockDotU(bits: i32, u: usize, xq: usize, chunks: i32): v128 {
  const zero = i32x4.splat(0);
  if (ASC_FEATURE_RELAXED_SIMD) {
    if (bits == 8) {
      let l = zero, g = zero;
      for (let c = 0; c < chunks; c++) {
        const v = v128.load(u + 16 * c);
        l = i32x4.relaxed_dot_i8x16_i7x16_add_s(v, v128.load(xq + 32 * c), l);
        g = i32x4.relaxed_dot_i8x16_i7x16_add_s(v, v128.load(xq + 32 * c, 16), g);
      }
      return i32x4.sub(l, i32x4.shl(g, 7));
    }
    let d = zero;
    for (let c = 0; c < chunks; c++) {
      d = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(xq + 32 * c), v128.load(u + 32 * c), d);
      d = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(xq + 32 * c, 16), v128.load(u + 32 * c, 16), d);
    }
    return d;
  }
  let d = zero;
  const vecs = chunks * (bits == 4 ? 4 : 2); // i16 vectors, laid out alike in u and xq
  for (let j = 0; j < vecs; j++) d = i32x4.add(d, i32x4.dot_i16x8_s(v128.load(u + 16 * j), v128.load(xq + 16 * j)));
  return d;
}

// @ts-ignore: decorator
@inline function epilogue(acc: v128, d0: v128, d1: v128, d2: v128, d3: v128, sp: usize, sx: usize, corr: usize): v128 {
  const dots = f32x4.convert_i32x4_s(i32x4.sub(transposeAdd(d0, d1, d2, d3), v128.load(corr)));
  return madd(dots, f32x4.mul(v128.load(sp), v128.load(sx)), acc);
}

/** Σ over blocks [b0, b0 + nb) of one row for one vector, as gemv.ts's rowQ sums one pass. */
// @ts-ignore: decorator
@inline function passQ(bits: i32, u: usize, sp: usize, xq: usize, sx: usize, corr: usize, nb: i32, chunks: i32): f32 {
  const uBlock = <usize>chunks * uChunk(bits);
  const xBlock: usize = <usize>chunks * (bits == 4 ? X4_CHUNK : 32);
  let acc = f32x4.splat(0);
  let b = 0;
  for (; b + 4 <= nb; b += 4) {
    const o = <usize>b << 2;
    acc = epilogue(acc,
      blockDotU(bits, u, xq, chunks),
      blockDotU(bits, u + uBlock, xq + xBlock, chunks),
      blockDotU(bits, u + 2 * uBlock, xq + 2 * xBlock, chunks),
      blockDotU(bits, u + 3 * uBlock, xq + 3 * xBlock, chunks), sp + o, sx + o, corr + o);
    u += 4 * uBlock;
    xq += 4 * xBlock;
  }
  let s = hsumF(acc);
  for (; b < nb; b++) {
    const o = <usize>b << 2;
    s += load<f32>(sp + o) * load<f32>(sx + o) * <f32>(hsumI(blockDotU(bits, u, xq, chunks)) - load<i32>(corr + o));
    u += uBlock;
    xq += xBlock;
  }
  return s;
}

/** Values of K per pass for int8, as gemv.ts's K_TILE_8 (its passes add into y: the same order here). */
const K_TILE_8 = 8192;

// @ts-ignore: decorator
@inline function gemvQN(bits: i32, tab: usize, w: usize, scales: usize, u: usize, n: i32, k: i32, bs: i32, nv: i32): void {
  const blocks = (k + bs - 1) / bs;
  const chunks = (bs * bits) >> 7;
  const blockBytes = <usize>(chunks << 4);
  const xBlock: usize = <usize>chunks * (bits == 4 ? X4_CHUNK : 32);
  const uBlock = <usize>chunks * uChunk(bits);
  const tile = bits == 8 ? max(4, (K_TILE_8 / bs) & ~3) : blocks;
  const raw = ASC_FEATURE_RELAXED_SIMD && bits == 8; // codes used as stored
  for (let r = 0; r < n; r++) {
    const wp = w + <usize>r * <usize>blocks * blockBytes;
    const sp = scales + ((<usize>r * <usize>blocks) << 2);
    const up = raw ? wp : u;
    if (!raw) unpackRow(bits, u, wp, blocks * chunks);
    for (let v = 0; v < nv; v++) {
      const xq = ptr(tab, v, 1), sx = ptr(tab, v, 2), corr = ptr(tab, v, 3);
      let s: f32 = 0;
      for (let b0 = 0; b0 < blocks; b0 += tile) {
        const nb = min(tile, blocks - b0);
        const o = <usize>b0 << 2;
        const a = <usize>b0;
        let t: f32;
        if (chunks == 1) t = passQ(bits, up + a * uBlock, sp + o, xq + a * xBlock, sx + o, corr + o, nb, 1);
        else if (chunks == 2) t = passQ(bits, up + a * uBlock, sp + o, xq + a * xBlock, sx + o, corr + o, nb, 2);
        else t = passQ(bits, up + a * uBlock, sp + o, xq + a * xBlock, sx + o, corr + o, nb, chunks);
        s = b0 > 0 ? s + t : t;
      }
      store<f32>(ptr(tab, v, 0) + (<usize>r << 2), s);
    }
  }
}

/** y_v = W·x_v for int4 W and the nv vectors of `tab` (quantizeActivations(…, 4)); u: scratch of 2·k bytes. */
export function gemvQ4N(tab: usize, w: usize, scales: usize, u: usize, n: i32, k: i32, bs: i32, nv: i32): void {
  gemvQN(4, tab, w, scales, u, n, k, bs, nv);
}

/** y_v = W·x_v for int8 W and the nv vectors of `tab` (quantizeActivations(…, 8)); u: scratch of 2·k bytes. */
export function gemvQ8N(tab: usize, w: usize, scales: usize, u: usize, n: i32, k: i32, bs: i32, nv: i32): void {
  gemvQN(8, tab, w, scales, u, n, k, bs, nv);
}
