import type { RgbImage } from "./types.ts";

/**
 * Bicubic resize that reproduces Pillow 9.4's `Image.resize(size, BICUBIC)` on 8-bit RGB bit for bit
 * (written from the description in docs/model-notes.md, "Image preprocessing"):
 * separable, horizontal pass first (rounded and clamped to uint8), then vertical; Keys cubic with
 * a = -0.5, widened by the scale when downscaling (antialiasing); normalised weights in 22-bit fixed
 * point. A dimension that does not change is not resampled at all (Pillow skips that pass).
 */

/** Fixed-point fraction bits for 8-bit images: 32 - 8 (sample) - 2 (headroom). */
const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;
/** Added before the final shift, so that `>> 22` rounds half up. */
const ROUND_HALF = 1 << (PRECISION_BITS - 1);
/** Keys cubic parameter; Pillow's BICUBIC uses a = -0.5. */
const A = -0.5;
/** Support of the cubic kernel at scale 1: |x| < 2. */
const CUBIC_SUPPORT = 2;

/** Keys cubic convolution kernel (Horner form of the polynomials in the notes). */
function cubic(x: number): number {
  const t = Math.abs(x);
  if (t < 1) return ((A + 2) * t - (A + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * A;
  return 0;
}

/** Taps and fixed-point weights of a 1-D resampling from `inSize` to `outSize` samples. */
interface AxisTaps {
  readonly first: Int32Array; // [out]: index of the first input sample
  readonly count: Int32Array; // [out]: number of input samples
  readonly weights: Int32Array; // [out, stride]: fixed-point weights (2^22 = 1.0)
  readonly stride: number;
}

function computeTaps(inSize: number, outSize: number): AxisTaps {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1); // widen the kernel when downscaling
  const support = CUBIC_SUPPORT * filterScale;
  const invFilterScale = 1 / filterScale;
  const stride = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * stride);
  const w = new Float64Array(stride);
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize); // exclusive
    const n = xmax - xmin;
    let sum = 0;
    for (let k = 0; k < n; k++) {
      w[k] = cubic((k + xmin - center + 0.5) * invFilterScale);
      sum += w[k];
    }
    for (let k = 0; k < n; k++) {
      const normalised = sum !== 0 ? w[k] / sum : w[k];
      // int(w·2^22 ± 0.5), rounding away from zero (C truncation after adding ±0.5)
      weights[i * stride + k] = Math.trunc(normalised < 0 ? normalised * ONE - 0.5 : normalised * ONE + 0.5);
    }
    first[i] = xmin;
    count[i] = n;
  }
  return { first, count, weights, stride };
}

/** Coefficient tables are pure functions of (in, out): keep a few, bounded, across calls. */
const TAPS_CACHE = new Map<string, AxisTaps>();
const TAPS_CACHE_LIMIT = 32;

function taps(inSize: number, outSize: number): AxisTaps {
  const key = `${inSize}>${outSize}`;
  let t = TAPS_CACHE.get(key);
  if (t === undefined) {
    t = computeTaps(inSize, outSize);
    if (TAPS_CACHE.size >= TAPS_CACHE_LIMIT) TAPS_CACHE.delete(TAPS_CACHE.keys().next().value as string);
    TAPS_CACHE.set(key, t);
  }
  return t;
}

const clampByte = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : v);

/** Horizontal pass: uint8[h, inW, ch] → uint8[h, outW, ch], for ch = 3 (RGB) or 1 (greyscale). */
function resampleRows(src: Uint8Array, h: number, inW: number, outW: number, ch: 1 | 3): Uint8Array {
  const { first, count, weights, stride } = taps(inW, outW);
  const out = new Uint8Array(h * outW * ch);
  for (let y = 0; y < h; y++) {
    const rowIn = y * inW * ch;
    let o = y * outW * ch;
    for (let x = 0; x < outW; x++, o += ch) {
      let r = ROUND_HALF;
      let g = ROUND_HALF;
      let b = ROUND_HALF;
      let p = rowIn + first[x] * ch;
      const wBase = x * stride;
      const n = count[x];
      if (ch === 1) {
        for (let k = 0; k < n; k++, p++) r += weights[wBase + k] * src[p];
        out[o] = clampByte(r >> PRECISION_BITS);
        continue;
      }
      for (let k = 0; k < n; k++, p += 3) {
        const wk = weights[wBase + k];
        r += wk * src[p];
        g += wk * src[p + 1];
        b += wk * src[p + 2];
      }
      out[o] = clampByte(r >> PRECISION_BITS);
      out[o + 1] = clampByte(g >> PRECISION_BITS);
      out[o + 2] = clampByte(b >> PRECISION_BITS);
    }
  }
  return out;
}

/** Vertical pass: uint8[inH, w, ch] → uint8[outH, w, ch]. */
function resampleColumns(src: Uint8Array, w: number, inH: number, outH: number, ch: 1 | 3): Uint8Array {
  const { first, count, weights, stride } = taps(inH, outH);
  const rowLen = w * ch;
  const out = new Uint8Array(outH * rowLen);
  const acc = new Float64Array(rowLen); // exact: |Σ w·x| < 2^31
  for (let y = 0; y < outH; y++) {
    acc.fill(ROUND_HALF);
    const n = count[y];
    for (let k = 0; k < n; k++) {
      const wk = weights[y * stride + k];
      const rowIn = (first[y] + k) * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i] += wk * src[rowIn + i];
    }
    const rowOut = y * rowLen;
    for (let i = 0; i < rowLen; i++) out[rowOut + i] = clampByte(acc[i] >> PRECISION_BITS);
  }
  return out;
}

/** Both passes over `ch`-channel uint8 pixels, each skipped when its dimension does not change (as Pillow). */
function resample(data: Uint8Array, w: number, h: number, outW: number, outH: number, ch: 1 | 3): Uint8Array {
  for (const [what, v] of [["outWidth", outW], ["outHeight", outH], ["width", w], ["height", h]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${what} must be a positive integer, got ${v}`);
  }
  if (data.length !== w * h * ch) throw new RangeError(`data has ${data.length} bytes, expected ${w}×${h}×${ch}`);
  let out = data;
  if (outW !== w) out = resampleRows(out, h, w, outW, ch);
  if (outH !== h) out = resampleColumns(out, outW, h, outH, ch);
  return out === data ? data.slice() : out;
}

/**
 * Resizes an RGB image to exactly `outWidth`×`outHeight` (aspect ratio not kept) with Pillow 9.4's
 * uint8 BICUBIC resampler, bit-exact. Same size in and out returns a copy.
 *
 * @throws RangeError for non-positive or non-integer sizes, or `data` of the wrong length.
 */
export function resizeBicubic(img: RgbImage, outWidth: number, outHeight: number): RgbImage {
  return { width: outWidth, height: outHeight, data: resample(img.data, img.width, img.height, outWidth, outHeight, 3) };
}

/**
 * The same resampler on a greyscale uint8[height, width] image: Pillow 9.4's `Image.resize` of a mode "L"
 * image with BICUBIC (its default filter for "L"), bit-exact.
 *
 * @throws RangeError for non-positive or non-integer sizes, or `data` of the wrong length.
 */
export function resizeBicubicGray(data: Uint8Array, width: number, height: number, outWidth: number, outHeight: number): Uint8Array {
  return resample(data, width, height, outWidth, outHeight, 1);
}
