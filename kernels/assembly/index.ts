// The kernel module's exports. Pointers are byte offsets into this module's linear memory; the host
// (shared/kernel/) allocates every buffer above heapBase() and owns the layout. Built twice from this
// source (kernels/build.ts): with relaxed SIMD and with plain SIMD only; ASC_FEATURE_RELAXED_SIMD picks.
export { gemvF32, gemvQ4, gemvQ8 } from "./gemv";
export { gemvQ4F, gemvQ8F } from "./gemv-f32";
export { gemvF32N, gemvQ4N, gemvQ8N } from "./gemv-batch";
export { gemvQ4FN, gemvQ8FN } from "./gemv-batch-f32";
export { permuteActivations, quantizeActivations } from "./activations";
export { addInto, attention, dot, geluMul, rmsNorm, rope, softcapInPlace } from "./ops";
export { gemm, packB } from "./gemm";
export { gemmW } from "./gemm-w";
export { gemmQ } from "./gemm-q";
export { gemmQ7 } from "./gemm-q7";
export { gemmQ4A8, gemmQ4A8Pairs, gemmQ4A8Wide, wideDot } from "./gemm-q4";
export { fullDot, gemmQ8A8, gemmQ8A8Split } from "./gemm-q8";
export { attnSoftmaxRows, layerNorm, softmaxRows } from "./encoder";

/** First byte the host may use (everything below is the module's static data and stack). */
export function heapBase(): usize {
  return __heap_base;
}

/** 1 when this build uses relaxed SIMD (fused multiply-add, 8-bit dot products), else 0. */
export function relaxedSimd(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
}

// Operands of the self-test, in memory so that the optimiser cannot fold the dot product away.
const PROBE = memory.data<i8>([-128, 127, -1, 2, -77, 5, 100, -6, 9, -10, 11, -12, 13, -14, 15, -16, 0, 127, 1, 64, 127, 3, 90, 4, 5, 6, 7, 8, 120, 10, 11, 12], 16);

/**
 * 1 when this engine computes the relaxed 8-bit dot product as the kernels need it (first operand signed,
 * second 7-bit, four products per lane accumulated, and the int16 pair sums of gemm-q4.ts): V8's early,
 * flag-gated relaxed SIMD (Node 20) differs.
 * Always 1 for the plain build.
 */
export function selfTest(): i32 {
  if (!ASC_FEATURE_RELAXED_SIMD) return 1;
  const r = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(PROBE), v128.load(PROBE, 16), i32x4.splat(1000));
  const p = i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(PROBE), v128.load(PROBE, 16)); // a[2j]·b[2j] + a[2j+1]·b[2j+1]
  // Lane sums of a[i]·b[i] over i = 4j … 4j+3, plus 1000.
  return i32(i32x4.extract_lane(r, 0) == 1000 + 0 + 16129 - 1 + 128)
    & i32(i32x4.extract_lane(r, 1) == 1000 - 9779 + 15 + 9000 - 24)
    & i32(i32x4.extract_lane(r, 2) == 1000 + 45 - 60 + 77 - 96)
    & i32(i32x4.extract_lane(r, 3) == 1000 + 1560 - 140 + 165 - 192)
    & i32(i16x8.extract_lane_s(p, 0) == 16129)
    & i32(i16x8.extract_lane_s(p, 1) == -1 + 128)
    & i32(i16x8.extract_lane_s(p, 2) == -9779 + 15)
    & i32(i16x8.extract_lane_s(p, 3) == 9000 - 24);
}
