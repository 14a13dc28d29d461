// Activation layouts for the integer dot products (accuracy_level 4 semantics: int8 activations).
//
// x float32[K] is quantised per block of `bs` values (the weights' block size): sx[b] = absmax/127,
// q = round(x/sx) in [-127, 127]; corr[b] = 8·Σq over the block for int4, so that Σ (w − 8)·q = Σ w·q − corr[b]
// can use the unsigned nibbles w directly (int8 codes are stored signed: corr = 0).
//
// The codes are stored in the order the weight kernels consume them (one layout per weight kind and build):
//   int4, relaxed SIMD: per 32 values, i8[16] of the even k then i8[16] of the odd k (a byte's low nibble is
//                       the even k, its high nibble the odd k).
//   int4, plain SIMD:   per 32 values, i16[8] × 4: vector j lane i holds k = 4i + j (an i16 lane of the packed
//                       weights holds k = 4i … 4i+3 in its four nibbles).
//   int8, relaxed SIMD: per 16 values, u8[16] l then u8[16] g with q = l − 128·g (l in [0, 127], g in {0, 1}).
//   int8, plain SIMD:   i16[K] in natural order.
// K is padded with zeros to whole blocks (the converter pads the weights with zero codes too).

/** Bytes of the int4 activation codes per 32 values in this build. */
export const X4_CHUNK: usize = ASC_FEATURE_RELAXED_SIMD ? 32 : 64;

/**
 * Quantises x[k] into `xq` (layout for `bits` 4 or 8, see above), `sx` f32[blocks] and `corr` i32[blocks].
 * Blocks past k are zero.
 */
export function quantizeActivations(xq: usize, sx: usize, corr: usize, x: usize, k: i32, bs: i32, bits: i32): void {
  const blocks = (k + bs - 1) / bs;
  const zero: i32 = bits == 4 ? 8 : 0;
  for (let b = 0; b < blocks; b++) {
    const k0 = b * bs;
    const k1 = min(k, k0 + bs);
    let absmax: f32 = 0;
    for (let i = k0; i < k1; i++) absmax = max(absmax, abs(load<f32>(x + (<usize>i << 2))));
    const scale: f32 = absmax / 127;
    const inv: f32 = scale > 0 ? 1 / scale : 0;
    store<f32>(sx + (<usize>b << 2), scale);
    let sum: i32 = 0;
    for (let i = k0; i < k0 + bs; i++) {
      const q: i32 = i < k1 ? <i32>nearest(load<f32>(x + (<usize>i << 2)) * inv) : 0;
      sum += q;
      storeCode(xq, i, q, bits);
    }
    store<i32>(corr + (<usize>b << 2), zero * sum);
  }
}

// @ts-ignore: decorator
@inline function storeCode(xq: usize, i: i32, q: i32, bits: i32): void {
  if (bits == 8) {
    if (ASC_FEATURE_RELAXED_SIMD) {
      const at = xq + <usize>(i >> 4) * 32 + <usize>(i & 15);
      store<u8>(at, q < 0 ? q + 128 : q);
      store<u8>(at, q < 0 ? 1 : 0, 16);
    } else {
      store<i16>(xq + (<usize>i << 1), <i16>q);
    }
    return;
  }
  const chunk = <usize>(i >> 5) * X4_CHUNK;
  const j = i & 31;
  if (ASC_FEATURE_RELAXED_SIMD) {
    store<i8>(xq + chunk + <usize>((j & 1) * 16 + (j >> 1)), <i8>q);
  } else {
    // j = 4·lane + nibble: vector `nibble`, lane `lane`.
    store<i16>(xq + chunk + <usize>(((j & 3) * 8 + (j >> 2)) << 1), <i16>q);
  }
}

/**
 * Float activations for the fp32-compute kernels (accuracy_level 0 semantics): int8 keeps x as it is; int4
 * reorders each 32 values like the plain-SIMD int4 codes (vector j lane i holds k = 4i + j), as f32.
 * K is padded with zeros to whole blocks.
 */
export function permuteActivations(xp: usize, x: usize, k: i32, bs: i32, bits: i32): void {
  const padded = ((k + bs - 1) / bs) * bs;
  for (let i = 0; i < padded; i++) {
    const v: f32 = i < k ? load<f32>(x + (<usize>i << 2)) : 0;
    const j = bits == 4 ? (i & ~31) + (i & 3) * 8 + ((i & 31) >> 2) : i;
    store<f32>(xp + (<usize>j << 2), v);
  }
}
