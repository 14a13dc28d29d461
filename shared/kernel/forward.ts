/**
 * One decode step of Gemma / Gemma 2 in the kernel module, in the order data flows (llama2.c's forward):
 * embedded token → per layer [RMSNorm → q/k/v → RoPE → append k/v to the cache → attention over the cache
 * (scale, soft-cap, sliding window, softmax) → o → (post-attention norm) → residual → norm → gate/up → gelu·up →
 * down → (post-feed-forward norm) → residual] → final norm → LM head slices → final soft-cap.
 * Semantics follow converter/graphs/decoder.ts and head.ts exactly (transformers v4.47); every tensor lives in
 * kernel memory and this class owns the activation scratch.
 */
import { isSlidingLayer, type ModelConfig } from "../model/config.ts";
import { ropeTables } from "../engine/positions.ts";
import type { KvSequence } from "./cache.ts";
import type { Linear } from "./linear.ts";
import type { Kernel } from "./module.ts";
import type { KernelHeadSlice, KernelLayer } from "./weights.ts";

/** Activation buffers (addresses of f32 arrays in kernel memory). */
interface Scratch {
  readonly x: number; // [H] residual stream
  readonly xb: number; // [H] normed input of a block
  readonly xb2: number; // [H] block output
  readonly q: number; // [heads·hd]
  readonly k: number; // [kvHeads·hd] new key (rotated), before it is written to the cache
  readonly v: number; // [kvHeads·hd]
  readonly att: number; // [heads·hd] attention output
  readonly hb: number; // [I] gate, then gelu(gate)·up
  readonly hb2: number; // [I] up
  readonly cos: number; // [hd]
  readonly sin: number; // [hd]
  readonly logits: number; // [largest head slice]
}

export class Forward {
  private readonly s: Scratch;
  private scores = -1; // f32[scoresCap]
  private scoresCap = 0;
  readonly scratchBytes: number;

  constructor(
    private readonly kernel: Kernel,
    private readonly config: ModelConfig,
    private readonly layers: readonly KernelLayer[],
    private readonly head: readonly KernelHeadSlice[],
    private readonly linear: Linear,
  ) {
    const t = config.text;
    const sizes = {
      x: t.hidden, xb: t.hidden, xb2: t.hidden, q: t.heads * t.headDim, k: t.kvHeads * t.headDim, v: t.kvHeads * t.headDim,
      att: t.heads * t.headDim, hb: t.intermediate, hb2: t.intermediate, cos: t.headDim, sin: t.headDim,
      logits: Math.max(...head.map((h) => h.to - h.from)),
    };
    const s: Record<string, number> = {};
    for (const [name, n] of Object.entries(sizes)) s[name] = kernel.heap.alloc(4 * n);
    this.s = s as unknown as Scratch;
    this.scratchBytes = Object.values(sizes).reduce((a, n) => a + 4 * n, 0);
  }

  /**
   * Appends one token (its embedding row `token`, f32[H]) to `seq` and, when `logits` (f32[vocab]) is given,
   * writes the next-token logits into it.
   */
  run(seq: KvSequence, token: Float32Array, logits: Float32Array | null): void {
    const t = this.config.text;
    const ex = this.kernel.exports;
    const heap = this.kernel.heap;
    const pos = seq.length; // cache index of the new token (position pos + 1, 1-based)
    seq.reserve(pos + 1);
    this.reserveScores(pos + 1);
    const s = this.s;
    heap.f32(s.x, t.hidden).set(token);
    const rope = ropeTables(t, pos + 1, 1);
    heap.f32(s.cos, t.headDim).set(rope.cos);
    heap.f32(s.sin, t.headDim).set(rope.sin);
    const hd = t.headDim;
    const scale = t.queryPreAttnScalar ** -0.5;
    const lin = this.linear;

    for (let l = 0; l < this.layers.length; l++) {
      const w = this.layers[l];
      const gemma2 = w.preFfNorm !== null;
      ex.rmsNorm(s.xb, s.x, w.inputNorm, t.hidden, t.rmsNormEps);
      lin.prepare(s.xb, t.hidden);
      lin.apply(w.q, s.q);
      lin.apply(w.k, s.k);
      lin.apply(w.v, s.v);
      ex.rope(s.q, s.cos, s.sin, t.heads, hd);
      ex.rope(s.k, s.cos, s.sin, t.kvHeads, hd);
      const mem = new Float32Array(heap.memory.buffer);
      for (let kv = 0; kv < t.kvHeads; kv++) {
        mem.copyWithin(seq.at("keys", l, kv, pos) / 4, s.k / 4 + kv * hd, s.k / 4 + (kv + 1) * hd);
        mem.copyWithin(seq.at("values", l, kv, pos) / 4, s.v / 4 + kv * hd, s.v / 4 + (kv + 1) * hd);
      }
      const window = isSlidingLayer(t, l) && t.slidingWindow !== null ? t.slidingWindow : null;
      const first = window === null ? 0 : Math.max(0, pos + 1 - window); // hides j ≤ pos − window
      ex.attention(s.att, s.q, seq.keys[l], seq.values[l], this.scores, t.heads, t.kvHeads, hd, seq.capacity, pos + 1, first, scale, t.attnLogitSoftcap ?? 0);
      lin.prepare(s.att, t.heads * hd);
      lin.apply(w.o, s.xb2);
      if (gemma2) ex.rmsNorm(s.xb2, s.xb2, w.postAttnNorm, t.hidden, t.rmsNormEps);
      ex.addInto(s.x, s.xb2, t.hidden);

      ex.rmsNorm(s.xb, s.x, gemma2 ? w.preFfNorm! : w.postAttnNorm, t.hidden, t.rmsNormEps);
      lin.prepare(s.xb, t.hidden);
      lin.apply(w.gate, s.hb);
      lin.apply(w.up, s.hb2);
      ex.geluMul(s.hb, s.hb2, t.intermediate);
      lin.prepare(s.hb, t.intermediate);
      lin.apply(w.down, s.xb2);
      if (gemma2) ex.rmsNorm(s.xb2, s.xb2, w.postFfNorm!, t.hidden, t.rmsNormEps);
      ex.addInto(s.x, s.xb2, t.hidden);
    }
    seq.length = pos + 1;
    if (logits) this.logits(logits);
  }

  /** Final norm, every head slice, final soft-cap → logits f32[vocab]. */
  private logits(out: Float32Array): void {
    const t = this.config.text;
    const ex = this.kernel.exports;
    const s = this.s;
    for (const slice of this.head) {
      ex.rmsNorm(s.xb, s.x, slice.norm, t.hidden, t.rmsNormEps);
      this.linear.prepare(s.xb, t.hidden);
      this.linear.apply(slice.table, s.logits);
      const rows = slice.to - slice.from;
      if (t.finalLogitSoftcap !== null) ex.softcapInPlace(s.logits, rows, t.finalLogitSoftcap);
      out.set(this.kernel.heap.f32(s.logits, rows), slice.from);
    }
  }

  private reserveScores(n: number): void {
    if (n <= this.scoresCap) return;
    if (this.scores >= 0) this.kernel.heap.release(this.scores);
    this.scoresCap = Math.max(n, 2 * this.scoresCap, 256);
    this.scores = this.kernel.heap.alloc(4 * this.scoresCap);
  }
}
