// The element-wise and attention parts of one Gemma / Gemma 2 decode step, in float32 (transformers v4.47
// semantics, see ../../../shared/docs/paligemma.md). All buffers are f32 arrays addressed by byte offset.
import { hsumF, madd } from "./simd";

// @ts-ignore: decorator
@inline function f(p: usize, i: i32): f32 {
  return load<f32>(p + (<usize>i << 2));
}

// @ts-ignore: decorator
@inline function setF(p: usize, i: i32, v: f32): void {
  store<f32>(p + (<usize>i << 2), v);
}

/** Σ a[i]·b[i] over n floats (n a multiple of 4, or any n with a scalar tail). */
export function dot(a: usize, b: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) acc = madd(v128.load(a + (<usize>i << 2)), v128.load(b + (<usize>i << 2)), acc);
  let s = hsumF(acc);
  for (; i < n; i++) s += f(a, i) * f(b, i);
  return s;
}

/** out[i] = x[i] · rsqrt(mean(x²) + eps) · w[i] for `rows` rows of n; w holds Gemma's (1 + weight). */
export function rmsNorm(out: usize, x: usize, w: usize, n: i32, eps: f32): void {
  const ms: f32 = dot(x, x, n) / <f32>n;
  const inv: f32 = 1 / sqrt<f32>(ms + eps);
  for (let i = 0; i < n; i++) setF(out, i, f(x, i) * inv * f(w, i));
}

/** x[h] = x[h]·cos + rotate_half(x[h])·sin for `heads` heads of `hd` values (rotate-half convention). */
export function rope(x: usize, cos: usize, sin: usize, heads: i32, hd: i32): void {
  const half = hd >> 1;
  for (let h = 0; h < heads; h++) {
    const p = x + (<usize>(h * hd) << 2);
    for (let i = 0; i < half; i++) {
      const a = f(p, i);
      const b = f(p, i + half);
      setF(p, i, a * f(cos, i) - b * f(sin, i));
      setF(p, i + half, b * f(cos, i + half) + a * f(sin, i + half));
    }
  }
}

/**
 * Attention of one new token over a cache of `t` positions (the new one included).
 *   q        f32[heads, hd] (already rotated)
 *   keys     f32[kvHeads, cap, hd] (rotated), values f32[kvHeads, cap, hd]
 *   scores   scratch f32[t]
 *   out      f32[heads, hd]
 * Query head h reads kv head h / (heads / kvHeads). Scores are scaled, soft-capped (cap > 0), then keys
 * before `first` are masked (Gemma 2's sliding window hides j ≤ i − window), softmax in float32.
 */
export function attention(out: usize, q: usize, keys: usize, values: usize, scores: usize, heads: i32, kvHeads: i32, hd: i32, cap: i32, t: i32, first: i32, scale: f32, softcap: f32): void {
  const group = heads / kvHeads;
  const headBytes = <usize>hd << 2;
  for (let h = 0; h < heads; h++) {
    const kv = h / group;
    const qh = q + <usize>h * headBytes;
    const kh = keys + <usize>kv * <usize>cap * headBytes;
    const vh = values + <usize>kv * <usize>cap * headBytes;
    let m: f32 = -Infinity;
    for (let j = first; j < t; j++) {
      let s: f32 = dot(qh, kh + <usize>j * headBytes, hd) * scale;
      if (softcap > 0) s = softcap * Mathf.tanh(s / softcap);
      setF(scores, j, s);
      m = max(m, s);
    }
    let sum: f32 = 0;
    for (let j = first; j < t; j++) {
      const e = Mathf.exp(f(scores, j) - m);
      setF(scores, j, e);
      sum += e;
    }
    const oh = out + <usize>h * headBytes;
    memory.fill(oh, 0, headBytes);
    const inv: f32 = 1 / sum;
    for (let j = first; j < t; j++) axpy(oh, vh + <usize>j * headBytes, f(scores, j) * inv, hd);
  }
}

/** y[i] += a·x[i] over n floats. */
function axpy(y: usize, x: usize, a: f32, n: i32): void {
  const av = f32x4.splat(a);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, madd(av, v128.load(x + o), v128.load(y + o)));
  }
  for (; i < n; i++) setF(y, i, f(y, i) + a * f(x, i));
}

/**
 * e^t on four f32 lanes: t = n·ln2 + r (ln2 split in two for an exact product), e^r by Cephes' degree-6
 * polynomial for expf, 2^n by building the exponent bits. Inputs are clamped to [-87, 87] (no inf, no denormal).
 * n is rounded to the nearest integer by adding 1.5·2²³ (the integer lands in the low mantissa bits), which
 * also gives its integer bits without a float → int conversion (cheaper than nearest + trunc_sat in V8).
 */
// @ts-ignore: decorator
@inline export function expv(t: v128): v128 {
  t = f32x4.pmax(f32x4.pmin(t, f32x4.splat(87)), f32x4.splat(-87));
  const shifted = f32x4.add(f32x4.mul(t, f32x4.splat(1.44269504088896341)), f32x4.splat(12582912)); // log2(e), 1.5·2²³
  const n = f32x4.sub(shifted, f32x4.splat(12582912));
  const r = f32x4.sub(f32x4.sub(t, f32x4.mul(n, f32x4.splat(0.693359375))), f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = madd(p, r, f32x4.splat(1.3981999507e-3));
  p = madd(p, r, f32x4.splat(8.3334519073e-3));
  p = madd(p, r, f32x4.splat(4.1665795894e-2));
  p = madd(p, r, f32x4.splat(1.6666665459e-1));
  p = madd(p, r, f32x4.splat(5.0000001201e-1));
  p = f32x4.add(madd(p, f32x4.mul(r, r), r), f32x4.splat(1));
  const scale = i32x4.shl(i32x4.add(shifted, i32x4.splat(127 - 0x4b400000)), 23); // (n + 127) << 23
  return f32x4.mul(p, scale);
}

/** gelu_tanh on four lanes: x·σ(2u) with u = √(2/π)(x + 0.044715x³), which equals 0.5·x·(1 + tanh u). */
// @ts-ignore: decorator
@inline export function geluv(x: v128): v128 {
  const t = f32x4.mul(f32x4.splat(-1.5957691216057308), madd(f32x4.mul(f32x4.splat(0.044715), x), f32x4.mul(x, x), x)); // −2u
  return f32x4.div(x, f32x4.add(f32x4.splat(1), expv(t)));
}

/**
 * gate[i] = gelu_tanh(gate[i]) · up[i] (Gemma's gated MLP; gelu with the tanh approximation), computed as
 * x·σ(2u) with u = √(2/π)(x + 0.044715x³), which equals 0.5·x·(1 + tanh u).
 */
export function geluMul(gate: usize, up: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(gate + o, f32x4.mul(geluv(v128.load(gate + o)), v128.load(up + o)));
  }
  for (; i < n; i++) {
    const x = f(gate, i);
    setF(gate, i, (x / (1 + Mathf.exp(-1.5957691216057308 * (x + 0.044715 * x * x * x)))) * f(up, i));
  }
}

/** x[i] += y[i] over n floats (residual connections). */
export function addInto(x: usize, y: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(x + o, f32x4.add(v128.load(x + o), v128.load(y + o)));
  }
  for (; i < n; i++) setF(x, i, f(x, i) + f(y, i));
}

/** x[i] = cap · tanh(x[i] / cap) over n floats (Gemma 2's final-logit soft-cap). */
export function softcapInPlace(x: usize, n: i32, cap: f32): void {
  for (let i = 0; i < n; i++) setF(x, i, cap * Mathf.tanh(f(x, i) / cap));
}
