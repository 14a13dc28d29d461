// Multi-vector GEMVs over int8/int4 weights with float32 activations (accuracy_level 0, as gemv-f32.ts): each
// 16-byte chunk of codes is dequantised (code − zero, converted to f32) once per pair of vectors, in registers,
// and multiplied into both with exactly the operations of gemv-f32.ts's chunk4f / chunk8f and its per-block
// scale, in the same order: each y_v is bit-identical to gemvQ4F / gemvQ8F of x_v alone.
// Vectors come as a table at `tab`: nv entries of four u32: y, x (permuteActivations' output), unused, unused.
import { hsumF, madd } from "./simd";

// @ts-ignore: decorator
@inline function cvtLo(v: v128): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(v));
}

// @ts-ignore: decorator
@inline function cvtHi(v: v128): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(v));
}

/** gemv-f32.ts's chunk4f on the chunk's dequantised planes f0…f7 (cvtLo/cvtHi of n0…n3): the same four chains. */
// @ts-ignore: decorator
@inline function chunk4r(f0: v128, f1: v128, f2: v128, f3: v128, f4: v128, f5: v128, f6: v128, f7: v128, x: usize, acc: v128): v128 {
  const a = madd(f4, v128.load(x, 64), madd(f0, v128.load(x), acc));
  const b = madd(f5, v128.load(x, 80), f32x4.mul(f1, v128.load(x, 16)));
  const c = madd(f6, v128.load(x, 96), f32x4.mul(f2, v128.load(x, 32)));
  const d = madd(f7, v128.load(x, 112), f32x4.mul(f3, v128.load(x, 48)));
  return f32x4.add(f32x4.add(a, b), f32x4.add(c, d));
}

/** gemv-f32.ts's chunk8f on the chunk's dequantised quarters f0…f3. */
// @ts-ignore: decorator
@inline function chunk8r(f0: v128, f1: v128, f2: v128, f3: v128, x: usize, acc: v128): v128 {
  acc = madd(f0, v128.load(x), acc);
  acc = madd(f1, v128.load(x, 16), acc);
  acc = madd(f2, v128.load(x, 32), acc);
  return madd(f3, v128.load(x, 48), acc);
}

/**
 * One row into one vector, or two (`pair`): gemv-f32.ts's per-row loop, each chunk of codes loaded and
 * dequantised once (into registers) for both vectors.
 */
// @ts-ignore: decorator
@inline function rowQF(bits: i32, pair: bool, wp: usize, sp: usize, xa: usize, xb: usize, blocks: i32, chunks: i32, y: usize, y2: usize): void {
  const m = i16x8.splat(0x0f);
  const z = i16x8.splat(8);
  const step: usize = bits == 4 ? 128 : 64; // bytes of f32 activations per 16-byte code chunk
  let acc = f32x4.splat(0);
  let acc2 = f32x4.splat(0);
  for (let b = 0; b < blocks; b++) {
    let blk = f32x4.splat(0);
    let blk2 = f32x4.splat(0);
    for (let c = 0; c < chunks; c++) {
      const v = v128.load(wp);
      if (bits == 4) {
        const n0 = i16x8.sub(v128.and(v, m), z);
        const n1 = i16x8.sub(v128.and(i16x8.shr_u(v, 4), m), z);
        const n2 = i16x8.sub(v128.and(i16x8.shr_u(v, 8), m), z);
        const n3 = i16x8.sub(i16x8.shr_u(v, 12), z);
        const f0 = cvtLo(n0), f1 = cvtHi(n0), f2 = cvtLo(n1), f3 = cvtHi(n1), f4 = cvtLo(n2), f5 = cvtHi(n2), f6 = cvtLo(n3), f7 = cvtHi(n3);
        blk = chunk4r(f0, f1, f2, f3, f4, f5, f6, f7, xa, blk);
        if (pair) blk2 = chunk4r(f0, f1, f2, f3, f4, f5, f6, f7, xb, blk2);
      } else {
        const lo = i16x8.extend_low_i8x16_s(v);
        const hi = i16x8.extend_high_i8x16_s(v);
        const f0 = cvtLo(lo), f1 = cvtHi(lo), f2 = cvtLo(hi), f3 = cvtHi(hi);
        blk = chunk8r(f0, f1, f2, f3, xa, blk);
        if (pair) blk2 = chunk8r(f0, f1, f2, f3, xb, blk2);
      }
      wp += 16;
      xa += step;
      xb += step;
    }
    const sc = f32x4.splat(load<f32>(sp + (<usize>b << 2)));
    acc = madd(blk, sc, acc);
    if (pair) acc2 = madd(blk2, sc, acc2);
  }
  store<f32>(y, hsumF(acc));
  if (pair) store<f32>(y2, hsumF(acc2));
}

/** rowQF for int8 codes and four vectors (four dequantised quarters leave registers for four block sums). */
// @ts-ignore: decorator
@inline function rowQ8F4(wp: usize, sp: usize, tab: usize, blocks: i32, chunks: i32, yo: usize): void {
  let x0 = <usize>load<u32>(tab, 4), x1 = <usize>load<u32>(tab, 20), x2 = <usize>load<u32>(tab, 36), x3 = <usize>load<u32>(tab, 52);
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  for (let b = 0; b < blocks; b++) {
    let k0 = f32x4.splat(0), k1 = f32x4.splat(0), k2 = f32x4.splat(0), k3 = f32x4.splat(0);
    for (let c = 0; c < chunks; c++) {
      const v = v128.load(wp);
      const lo = i16x8.extend_low_i8x16_s(v);
      const hi = i16x8.extend_high_i8x16_s(v);
      const f0 = cvtLo(lo), f1 = cvtHi(lo), f2 = cvtLo(hi), f3 = cvtHi(hi);
      k0 = chunk8r(f0, f1, f2, f3, x0, k0);
      k1 = chunk8r(f0, f1, f2, f3, x1, k1);
      k2 = chunk8r(f0, f1, f2, f3, x2, k2);
      k3 = chunk8r(f0, f1, f2, f3, x3, k3);
      wp += 16;
      x0 += 64;
      x1 += 64;
      x2 += 64;
      x3 += 64;
    }
    const sc = f32x4.splat(load<f32>(sp + (<usize>b << 2)));
    a0 = madd(k0, sc, a0);
    a1 = madd(k1, sc, a1);
    a2 = madd(k2, sc, a2);
    a3 = madd(k3, sc, a3);
  }
  store<f32>(<usize>load<u32>(tab) + yo, hsumF(a0));
  store<f32>(<usize>load<u32>(tab, 16) + yo, hsumF(a1));
  store<f32>(<usize>load<u32>(tab, 32) + yo, hsumF(a2));
  store<f32>(<usize>load<u32>(tab, 48) + yo, hsumF(a3));
}

/** rowQF for int4 codes and four vectors (the eight dequantised planes shared by four block sums). */
// @ts-ignore: decorator
@inline function rowQ4F4(wp: usize, sp: usize, tab: usize, blocks: i32, yo: usize): void {
  const m = i16x8.splat(0x0f);
  const z = i16x8.splat(8);
  let x0 = <usize>load<u32>(tab, 4), x1 = <usize>load<u32>(tab, 20), x2 = <usize>load<u32>(tab, 36), x3 = <usize>load<u32>(tab, 52);
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  for (let b = 0; b < blocks; b++) {
    // int4 blocks here are one chunk (block size 32): gemv-f32.ts's blk starts at zero for each block.
    const v = v128.load(wp);
    const n0 = i16x8.sub(v128.and(v, m), z);
    const n1 = i16x8.sub(v128.and(i16x8.shr_u(v, 4), m), z);
    const n2 = i16x8.sub(v128.and(i16x8.shr_u(v, 8), m), z);
    const n3 = i16x8.sub(i16x8.shr_u(v, 12), z);
    const f0 = cvtLo(n0), f1 = cvtHi(n0), f2 = cvtLo(n1), f3 = cvtHi(n1), f4 = cvtLo(n2), f5 = cvtHi(n2), f6 = cvtLo(n3), f7 = cvtHi(n3);
    const sc = f32x4.splat(load<f32>(sp + (<usize>b << 2)));
    const zero = f32x4.splat(0);
    a0 = madd(chunk4r(f0, f1, f2, f3, f4, f5, f6, f7, x0, zero), sc, a0);
    a1 = madd(chunk4r(f0, f1, f2, f3, f4, f5, f6, f7, x1, zero), sc, a1);
    a2 = madd(chunk4r(f0, f1, f2, f3, f4, f5, f6, f7, x2, zero), sc, a2);
    a3 = madd(chunk4r(f0, f1, f2, f3, f4, f5, f6, f7, x3, zero), sc, a3);
    wp += 16;
    x0 += 128;
    x1 += 128;
    x2 += 128;
    x3 += 128;
  }
  store<f32>(<usize>load<u32>(tab) + yo, hsumF(a0));
  store<f32>(<usize>load<u32>(tab, 16) + yo, hsumF(a1));
  store<f32>(<usize>load<u32>(tab, 32) + yo, hsumF(a2));
  store<f32>(<usize>load<u32>(tab, 48) + yo, hsumF(a3));
}

// @ts-ignore: decorator
@inline function gemvQFN(bits: i32, tab: usize, w: usize, scales: usize, n: i32, k: i32, bs: i32, nv: i32): void {
  const blocks = (k + bs - 1) / bs;
  const chunks = (bs * bits) >> 7;
  for (let r = 0; r < n; r++) {
    const wp = w + <usize>r * <usize>blocks * <usize>(chunks << 4);
    const sp = scales + ((<usize>r * <usize>blocks) << 2);
    const yo = <usize>r << 2;
    let v = 0;
    if (bits == 8) for (; v + 4 <= nv; v += 4) rowQ8F4(wp, sp, tab + (<usize>v << 4), blocks, chunks, yo);
    if (bits == 4 && chunks == 1) for (; v + 4 <= nv; v += 4) rowQ4F4(wp, sp, tab + (<usize>v << 4), blocks, yo);
    for (; v + 2 <= nv; v += 2) {
      const e = tab + (<usize>v << 4);
      rowQF(bits, true, wp, sp, <usize>load<u32>(e, 4), <usize>load<u32>(e, 20), blocks, chunks, <usize>load<u32>(e) + yo, <usize>load<u32>(e, 16) + yo);
    }
    if (v < nv) {
      const e = tab + (<usize>v << 4);
      rowQF(bits, false, wp, sp, <usize>load<u32>(e, 4), 0, blocks, chunks, <usize>load<u32>(e) + yo, 0);
    }
  }
}

/** y_v = W·x_v for int4 W, float activations (permuteActivations(…, 4)). */
export function gemvQ4FN(tab: usize, w: usize, scales: usize, n: i32, k: i32, bs: i32, nv: i32): void {
  gemvQFN(4, tab, w, scales, n, k, bs, nv);
}

/** y_v = W·x_v for int8 W, float activations (natural order, padded). */
export function gemvQ8FN(tab: usize, w: usize, scales: usize, n: i32, k: i32, bs: i32, nv: i32): void {
  gemvQFN(8, tab, w, scales, n, k, bs, nv);
}
