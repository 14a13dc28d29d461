// Row-wise parts of a SigLIP encoder layer over all image tokens at once (transformers v4.47 semantics, in
// float32); the matrix products are gemm.ts. Buffers are f32 arrays addressed by byte offset.
import { hsumF, madd } from "./simd";
import { expv } from "./ops";

/** out[r] = (x[r] − mean) / sqrt(var + eps) · w + b for `rows` rows of n (biased variance, as LayerNorm). */
export function layerNorm(out: usize, x: usize, w: usize, b: usize, rows: i32, n: i32, eps: f32): void {
  const bytes = <usize>n << 2;
  for (let r = 0; r < rows; r++) {
    const xr = x + <usize>r * bytes;
    const or = out + <usize>r * bytes;
    let s = f32x4.splat(0);
    let i = 0;
    for (; i + 4 <= n; i += 4) s = f32x4.add(s, v128.load(xr + (<usize>i << 2)));
    let sum = hsumF(s);
    for (; i < n; i++) sum += load<f32>(xr + (<usize>i << 2));
    const mean: f32 = sum / <f32>n;
    const mv = f32x4.splat(mean);
    s = f32x4.splat(0);
    i = 0;
    for (; i + 4 <= n; i += 4) {
      const d = f32x4.sub(v128.load(xr + (<usize>i << 2)), mv);
      s = f32x4.add(s, f32x4.mul(d, d));
    }
    let sq = hsumF(s);
    for (; i < n; i++) {
      const d = load<f32>(xr + (<usize>i << 2)) - mean;
      sq += d * d;
    }
    const inv: f32 = 1 / sqrt<f32>(sq / <f32>n + eps);
    const iv = f32x4.splat(inv);
    i = 0;
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      const y = f32x4.mul(f32x4.sub(v128.load(xr + o), mv), iv);
      v128.store(or + o, f32x4.add(f32x4.mul(y, v128.load(w + o)), v128.load(b + o)));
    }
    for (; i < n; i++) {
      const o = <usize>i << 2;
      store<f32>(or + o, (load<f32>(xr + o) - mean) * inv * load<f32>(w + o) + load<f32>(b + o));
    }
  }
}

/** Each of `rows` rows of n (ld floats apart) ← softmax(row · scale), in place. */
export function softmaxRows(x: usize, ld: i32, rows: i32, n: i32, scale: f32): void {
  const sv = f32x4.splat(scale);
  for (let r = 0; r < rows; r++) {
    const p = x + ((<usize>r * <usize>ld) << 2);
    let mx = f32x4.splat(-Infinity);
    let j = 0;
    for (; j + 4 <= n; j += 4) mx = f32x4.pmax(mx, v128.load(p + (<usize>j << 2)));
    mx = f32x4.pmax(mx, v128.shuffle<u32>(mx, mx, 2, 3, 0, 1));
    let top = max(f32x4.extract_lane(mx, 0), f32x4.extract_lane(mx, 1));
    for (; j < n; j++) top = max(top, load<f32>(p + (<usize>j << 2)));
    const m = top * scale; // the largest scaled score (scale > 0)
    const mv = f32x4.splat(-m);
    let s = f32x4.splat(0);
    j = 0;
    for (; j + 4 <= n; j += 4) {
      const o = <usize>j << 2;
      const e = expv(madd(v128.load(p + o), sv, mv));
      v128.store(p + o, e);
      s = f32x4.add(s, e);
    }
    let sum = hsumF(s);
    for (; j < n; j++) {
      const o = <usize>j << 2;
      const e = Mathf.exp(load<f32>(p + o) * scale - m);
      store<f32>(p + o, e);
      sum += e;
    }
    const iv = f32x4.splat(1 / sum);
    j = 0;
    for (; j + 4 <= n; j += 4) v128.store(p + (<usize>j << 2), f32x4.mul(v128.load(p + (<usize>j << 2)), iv));
    for (; j < n; j++) store<f32>(p + (<usize>j << 2), load<f32>(p + (<usize>j << 2)) / sum);
  }
}

/**
 * Prefix-LM attention weights for `rows` query rows of a prefill, in place over their scores x[rows][t] (ld
 * floats apart): row r is the query at cache index i = pos0 + r; key j is visible when it lies in the prefix
 * (j < prefixEnd) or is not after the query (j ≤ i), and, with a sliding window (window > 0), only when
 * j > i − window. Visible scores are scaled, soft-capped (softcap > 0: cap · tanh(s / cap)), then softmaxed in
 * float32; hidden ones become 0 (what adding finfo.min before the softmax gives).
 */
export function attnSoftmaxRows(x: usize, ld: i32, rows: i32, pos0: i32, t: i32, prefixEnd: i32, window: i32, scale: f32, softcap: f32): void {
  for (let r = 0; r < rows; r++) {
    const i = pos0 + r;
    const p = x + ((<usize>r * <usize>ld) << 2);
    const first = window > 0 ? max(0, i - window + 1) : 0;
    const last = min(t, max(prefixEnd, i + 1));
    let m: f32 = -Infinity;
    for (let j = first; j < last; j++) {
      let s = load<f32>(p + (<usize>j << 2)) * scale;
      if (softcap > 0) s = softcap * Mathf.tanh(s / softcap);
      store<f32>(p + (<usize>j << 2), s);
      m = max(m, s);
    }
    let sum: f32 = 0;
    for (let j = first; j < last; j++) {
      const e = Mathf.exp(load<f32>(p + (<usize>j << 2)) - m);
      store<f32>(p + (<usize>j << 2), e);
      sum += e;
    }
    const inv: f32 = 1 / sum;
    for (let j = 0; j < t; j++) {
      const o = p + (<usize>j << 2);
      store<f32>(o, j >= first && j < last ? load<f32>(o) * inv : 0);
    }
  }
}
