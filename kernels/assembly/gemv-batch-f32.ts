// Multi-vector GEMVs over int8/int4 weights with float32 activations (accuracy_level 0, as gemv-f32.ts): each
// row is dequantised ONCE into a float32 scratch row `u` (code − zero, converted), in the layout of the
// activations, then multiplied into every vector with exactly the operations of gemv-f32.ts's chunk4f / chunk8f
// and its per-block scale, in the same order: each y_v is bit-identical to gemvQ4F / gemvQ8F of x_v alone.
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

/** Dequantises `chunks` 16-byte chunks at w into u (f32, at the offsets of the activations they meet). */
// @ts-ignore: decorator
@inline function dequantRow(bits: i32, u: usize, w: usize, chunks: i32): void {
  const m = i16x8.splat(0x0f);
  const z = i16x8.splat(8);
  for (let c = 0; c < chunks; c++) {
    const v = v128.load(w + (<usize>c << 4));
    if (bits == 4) {
      const o = u + (<usize>c << 7);
      const n0 = i16x8.sub(v128.and(v, m), z);
      const n1 = i16x8.sub(v128.and(i16x8.shr_u(v, 4), m), z);
      const n2 = i16x8.sub(v128.and(i16x8.shr_u(v, 8), m), z);
      const n3 = i16x8.sub(i16x8.shr_u(v, 12), z);
      v128.store(o, cvtLo(n0));
      v128.store(o, cvtHi(n0), 16);
      v128.store(o, cvtLo(n1), 32);
      v128.store(o, cvtHi(n1), 48);
      v128.store(o, cvtLo(n2), 64);
      v128.store(o, cvtHi(n2), 80);
      v128.store(o, cvtLo(n3), 96);
      v128.store(o, cvtHi(n3), 112);
    } else {
      const o = u + (<usize>c << 6);
      const lo = i16x8.extend_low_i8x16_s(v);
      const hi = i16x8.extend_high_i8x16_s(v);
      v128.store(o, cvtLo(lo));
      v128.store(o, cvtHi(lo), 16);
      v128.store(o, cvtLo(hi), 32);
      v128.store(o, cvtHi(hi), 48);
    }
  }
}

/** gemv-f32.ts's chunk4f on dequantised weights: the same four chains, combined in the same order. */
// @ts-ignore: decorator
@inline function chunk4u(u: usize, x: usize, acc: v128): v128 {
  const a = madd(v128.load(u, 64), v128.load(x, 64), madd(v128.load(u), v128.load(x), acc));
  const b = madd(v128.load(u, 80), v128.load(x, 80), f32x4.mul(v128.load(u, 16), v128.load(x, 16)));
  const c = madd(v128.load(u, 96), v128.load(x, 96), f32x4.mul(v128.load(u, 32), v128.load(x, 32)));
  const d = madd(v128.load(u, 112), v128.load(x, 112), f32x4.mul(v128.load(u, 48), v128.load(x, 48)));
  return f32x4.add(f32x4.add(a, b), f32x4.add(c, d));
}

/** gemv-f32.ts's chunk8f on dequantised weights. */
// @ts-ignore: decorator
@inline function chunk8u(u: usize, x: usize, acc: v128): v128 {
  acc = madd(v128.load(u), v128.load(x), acc);
  acc = madd(v128.load(u, 16), v128.load(x, 16), acc);
  acc = madd(v128.load(u, 32), v128.load(x, 32), acc);
  return madd(v128.load(u, 48), v128.load(x, 48), acc);
}

// @ts-ignore: decorator
@inline function gemvQFN(bits: i32, tab: usize, w: usize, scales: usize, u: usize, n: i32, k: i32, bs: i32, nv: i32): void {
  const blocks = (k + bs - 1) / bs;
  const chunks = (bs * bits) >> 7;
  const step: usize = bits == 4 ? 128 : 64; // bytes of f32 per 16-byte code chunk, in u and in x alike
  for (let r = 0; r < n; r++) {
    const wp = w + <usize>r * <usize>blocks * <usize>(chunks << 4);
    const sp = scales + ((<usize>r * <usize>blocks) << 2);
    dequantRow(bits, u, wp, blocks * chunks);
    for (let v = 0; v < nv; v++) {
      const e = tab + (<usize>v << 4);
      let xp = <usize>load<u32>(e, 4);
      let up = u;
      let acc = f32x4.splat(0);
      for (let b = 0; b < blocks; b++) {
        let blk = f32x4.splat(0);
        for (let c = 0; c < chunks; c++) {
          blk = bits == 4 ? chunk4u(up, xp, blk) : chunk8u(up, xp, blk);
          up += step;
          xp += step;
        }
        acc = madd(blk, f32x4.splat(load<f32>(sp + (<usize>b << 2))), acc);
      }
      store<f32>(<usize>load<u32>(e) + (<usize>r << 2), hsumF(acc));
    }
  }
}

/** y_v = W·x_v for int4 W, float activations (permuteActivations(…, 4)); u: scratch of 4·k bytes. */
export function gemvQ4FN(tab: usize, w: usize, scales: usize, u: usize, n: i32, k: i32, bs: i32, nv: i32): void {
  gemvQFN(4, tab, w, scales, u, n, k, bs, nv);
}

/** y_v = W·x_v for int8 W, float activations (natural order, padded); u: scratch of 4·k bytes. */
export function gemvQ8FN(tab: usize, w: usize, scales: usize, u: usize, n: i32, k: i32, bs: i32, nv: i32): void {
  gemvQFN(8, tab, w, scales, u, n, k, bs, nv);
}
