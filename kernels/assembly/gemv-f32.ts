// Quantised weights × float32 activations: onnxruntime's MatMulNBits accuracy_level 0 semantics, where each
// weight is dequantised to (code − zero)·scale and multiplied in float32. Slower than the integer kernels
// (gemv.ts) but without activation rounding; activations come from permuteActivations.
import { hsumF, madd } from "./simd";

// @ts-ignore: decorator
@inline function cvtLo(v: v128): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(v));
}

// @ts-ignore: decorator
@inline function cvtHi(v: v128): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(v));
}

/** Σ (code − 8)·x over a 16-byte chunk of int4 codes (32 values) into f32 lanes. */
// @ts-ignore: decorator
@inline function chunk4f(v: v128, x: usize, acc: v128): v128 {
  const m = i16x8.splat(0x0f);
  const z = i16x8.splat(8);
  const n0 = i16x8.sub(v128.and(v, m), z);
  const n1 = i16x8.sub(v128.and(i16x8.shr_u(v, 4), m), z);
  const n2 = i16x8.sub(v128.and(i16x8.shr_u(v, 8), m), z);
  const n3 = i16x8.sub(i16x8.shr_u(v, 12), z);
  // Four independent chains: one long chain of dependent multiply-adds would leave the core waiting on latency.
  const a = madd(cvtLo(n2), v128.load(x, 64), madd(cvtLo(n0), v128.load(x), acc));
  const b = madd(cvtHi(n2), v128.load(x, 80), f32x4.mul(cvtHi(n0), v128.load(x, 16)));
  const c = madd(cvtLo(n3), v128.load(x, 96), f32x4.mul(cvtLo(n1), v128.load(x, 32)));
  const d = madd(cvtHi(n3), v128.load(x, 112), f32x4.mul(cvtHi(n1), v128.load(x, 48)));
  return f32x4.add(f32x4.add(a, b), f32x4.add(c, d));
}

/** Σ code·x over a 16-byte chunk of signed int8 codes (code − 128, 16 values) into f32 lanes. */
// @ts-ignore: decorator
@inline function chunk8f(v: v128, x: usize, acc: v128): v128 {
  const lo = i16x8.extend_low_i8x16_s(v);
  const hi = i16x8.extend_high_i8x16_s(v);
  acc = madd(cvtLo(lo), v128.load(x), acc);
  acc = madd(cvtHi(lo), v128.load(x, 16), acc);
  acc = madd(cvtLo(hi), v128.load(x, 32), acc);
  return madd(cvtHi(hi), v128.load(x, 48), acc);
}

// @ts-ignore: decorator
@inline function gemvQF(bits: i32, y: usize, w: usize, scales: usize, x: usize, n: i32, k: i32, bs: i32): void {
  const blocks = (k + bs - 1) / bs;
  const chunks = (bs * bits) >> 7;
  const xChunk: usize = bits == 4 ? 128 : 64; // bytes of f32 activations per 16-byte code chunk
  for (let r = 0; r < n; r++) {
    let wp = w + <usize>r * <usize>blocks * <usize>(chunks << 4);
    const sp = scales + ((<usize>r * <usize>blocks) << 2);
    let xp = x;
    let acc = f32x4.splat(0);
    for (let b = 0; b < blocks; b++) {
      let blk = f32x4.splat(0);
      for (let c = 0; c < chunks; c++) {
        blk = bits == 4 ? chunk4f(v128.load(wp), xp, blk) : chunk8f(v128.load(wp), xp, blk);
        wp += 16;
        xp += xChunk;
      }
      acc = madd(blk, f32x4.splat(load<f32>(sp + (<usize>b << 2))), acc);
    }
    store<f32>(y + (<usize>r << 2), hsumF(acc));
  }
}

/** y = W·x for int4 W with float32 activations from permuteActivations(…, 4). */
export function gemvQ4F(y: usize, w: usize, scales: usize, x: usize, n: i32, k: i32, bs: i32): void {
  gemvQF(4, y, w, scales, x, n, k, bs);
}

/** y = W·x for int8 W with float32 activations (natural order, padded to whole blocks). */
export function gemvQ8F(y: usize, w: usize, scales: usize, x: usize, n: i32, k: i32, bs: i32): void {
  gemvQF(8, y, w, scales, x, n, k, bs);
}
