/**
 * The kernel's element-wise and attention ops against float64 references written from the semantics in
 * shared/docs/paligemma.md (RMSNorm with 1 + w, rotate-half RoPE, scaled → soft-capped → windowed softmax
 * attention with grouped KV heads, gelu-tanh gating, final soft-cap).
 */
import { describe, expect, it } from "vitest";
import { kernelOf, nmse, put, uniform } from "./helpers.ts";

describe("kernel ops (plain-SIMD build)", async () => {
  const kernel = (await kernelOf("simd"))!;
  const ex = kernel.exports;
  const read = (at: number, n: number) => kernel.heap.f32(at, n).slice();

  it("rmsNorm: x · rsqrt(mean(x²) + eps) · w", () => {
    const n = 70;
    const x = uniform(n, 1).map((v) => 3 * v);
    const w = uniform(n, 2).map((v) => 1 + v);
    const out = kernel.heap.alloc(4 * n);
    ex.rmsNorm(out, put(kernel, x), put(kernel, w), n, 1e-6);
    const inv = 1 / Math.sqrt(x.reduce((a, v) => a + v * v, 0) / n + 1e-6);
    expect(nmse(read(out, n), Array.from(x, (v, i) => v * inv * w[i])).nmse).toBeLessThan(1e-13);
  });

  it("rope: rotate-half over every head, in place", () => {
    const heads = 3;
    const hd = 24;
    const x = uniform(heads * hd, 3);
    const angle = (i: number) => 5 / 10000 ** ((2 * (i % (hd / 2))) / hd);
    const cos = Float32Array.from({ length: hd }, (_, i) => Math.cos(angle(i)));
    const sin = Float32Array.from({ length: hd }, (_, i) => Math.sin(angle(i)));
    const at = put(kernel, x);
    ex.rope(at, put(kernel, cos), put(kernel, sin), heads, hd);
    const ref = Array.from(x, (v, j) => {
      const i = j % hd;
      const rot = i < hd / 2 ? -x[j + hd / 2] : x[j - hd / 2];
      return v * cos[i] + rot * sin[i];
    });
    expect(nmse(read(at, heads * hd), ref).nmse).toBeLessThan(1e-13);
  });

  for (const { softcap, first } of [{ softcap: 0, first: 0 }, { softcap: 8, first: 5 }]) {
    it(`attention over a cache with spare capacity (softcap ${softcap}, keys from ${first})`, () => {
      const [heads, kvHeads, hd, cap, t] = [4, 2, 20, 16, 11];
      const q = uniform(heads * hd, 4).map((v) => 2 * v);
      const keys = uniform(kvHeads * cap * hd, 5).map((v) => 2 * v);
      const values = uniform(kvHeads * cap * hd, 6);
      const out = kernel.heap.alloc(4 * heads * hd);
      const scale = 32 ** -0.5;
      ex.attention(out, put(kernel, q), put(kernel, keys), put(kernel, values), kernel.heap.alloc(4 * t), heads, kvHeads, hd, cap, t, first, scale, softcap);
      const ref: number[] = [];
      for (let h = 0; h < heads; h++) {
        const kv = Math.floor(h / (heads / kvHeads));
        const s = Array.from({ length: t }, (_, j) => {
          let d = 0;
          for (let i = 0; i < hd; i++) d += q[h * hd + i] * keys[(kv * cap + j) * hd + i];
          d *= scale;
          return (softcap > 0 ? softcap * Math.tanh(d / softcap) : d) + (j < first ? -3.4028234663852886e38 : 0);
        });
        const m = Math.max(...s);
        const e = s.map((v) => Math.exp(v - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let i = 0; i < hd; i++) ref.push(e.reduce((a, p, j) => a + (p / z) * values[(kv * cap + j) * hd + i], 0));
      }
      expect(nmse(read(out, heads * hd), ref).nmse).toBeLessThan(1e-12);
    });
  }

  it("geluMul: gelu_tanh(gate) · up; softcap; addInto", () => {
    const n = 37;
    const g = uniform(n, 7).map((v, i) => (i % 3 === 0 ? 40 : 4) * v); // saturated tails too
    const u = uniform(n, 8);
    const ga = put(kernel, g);
    ex.geluMul(ga, put(kernel, u), n);
    const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    expect(nmse(read(ga, n), Array.from(g, (x, i) => gelu(x) * u[i])).nmse).toBeLessThan(1e-13);

    const l = uniform(n, 9).map((v) => 60 * v);
    const la = put(kernel, l);
    ex.softcapInPlace(la, n, 30);
    expect(nmse(read(la, n), Array.from(l, (x) => 30 * Math.tanh(x / 30))).nmse).toBeLessThan(1e-13);

    const a = put(kernel, u);
    ex.addInto(a, put(kernel, g), n);
    expect(Array.from(read(a, n))).toEqual(Array.from(u, (v, i) => Math.fround(v + g[i])));
  });
});
