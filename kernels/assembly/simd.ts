// Small SIMD helpers shared by the kernels (AssemblyScript, inlined at every use).

/** Sum of the four f32 lanes. */
// @ts-ignore: decorator
@inline export function hsumF(v: v128): f32 {
  const s = f32x4.add(v, v128.shuffle<u32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(f32x4.add(s, v128.shuffle<u32>(s, s, 1, 0, 3, 2)), 0);
}

/** Sum of the four i32 lanes. */
// @ts-ignore: decorator
@inline export function hsumI(v: v128): i32 {
  const s = i32x4.add(v, v128.shuffle<u32>(v, v, 2, 3, 0, 1));
  return i32x4.extract_lane(i32x4.add(s, v128.shuffle<u32>(s, s, 1, 0, 3, 2)), 0);
}

/** (Σa, Σb, Σc, Σd): four horizontal i32 sums in one vector (9 ops instead of four reductions). */
// @ts-ignore: decorator
@inline export function transposeAdd(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(v128.shuffle<u32>(a, b, 0, 4, 1, 5), v128.shuffle<u32>(a, b, 2, 6, 3, 7)); // a02 b02 a13 b13
  const cd = i32x4.add(v128.shuffle<u32>(c, d, 0, 4, 1, 5), v128.shuffle<u32>(c, d, 2, 6, 3, 7));
  return i32x4.add(v128.shuffle<u32>(ab, cd, 0, 1, 4, 5), v128.shuffle<u32>(ab, cd, 2, 3, 6, 7));
}

/** acc + a·b on f32 lanes (fused where relaxed SIMD is enabled: one rounding instead of two). */
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, acc);
  return f32x4.add(acc, f32x4.mul(a, b));
}

/**
 * Four vectors of four i32 lanes each (lane j of vector c: element j of column c) transposed into four vectors,
 * element j of columns 0..3, stored 32 bytes apart at `dst` (the integer GEMMs' weight panels: 4-byte groups of
 * codes or int16 pairs).
 */
// @ts-ignore: decorator
@inline export function transpose4(dst: usize, v0: v128, v1: v128, v2: v128, v3: v128): void {
  const a = v128.shuffle<u32>(v0, v1, 0, 4, 1, 5);
  const b = v128.shuffle<u32>(v2, v3, 0, 4, 1, 5);
  const c = v128.shuffle<u32>(v0, v1, 2, 6, 3, 7);
  const d = v128.shuffle<u32>(v2, v3, 2, 6, 3, 7);
  v128.store(dst, v128.shuffle<u32>(a, b, 0, 1, 4, 5));
  v128.store(dst + 32, v128.shuffle<u32>(a, b, 2, 3, 6, 7));
  v128.store(dst + 64, v128.shuffle<u32>(c, d, 0, 1, 4, 5));
  v128.store(dst + 96, v128.shuffle<u32>(c, d, 2, 3, 6, 7));
}
