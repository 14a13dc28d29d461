/**
 * One decode step of Gemma / Gemma 2 in the kernel module, in the order data flows (llama2.c's forward):
 * embedded token → per layer [RMSNorm → q/k/v → RoPE → append k/v to the cache → attention over the cache
 * (scale, soft-cap, sliding window, softmax) → o → (post-attention norm) → residual → norm → Σ over the MLP's
 * parts of gate/up → gelu·up → down → (post-feed-forward norm) → residual] → final norm → LM head slices →
 * final soft-cap. Semantics follow converter/graphs/decoder.ts and head.ts exactly (transformers v4.47); every
 * tensor lives in kernel memory and this class owns the activation scratch.
 */
import { isSlidingLayer, type ModelConfig } from "../model/config.ts";
import { ropeTables } from "../engine/positions.ts";
import type { KvSequence } from "./cache.ts";
import type { HeadSlice, LayerSlice } from "./decoder-weights.ts";
import type { Linear } from "./linear.ts";
import { LoraScratch, loraKey, type KernelAdapter } from "./lora.ts";
import type { Kernel } from "./module.ts";

/** Activation buffers (addresses of f32 arrays in kernel memory). */
interface Scratch {
  readonly x: number; // [H] residual stream
  readonly xb: number; // [H] normed input of a block
  readonly xb2: number; // [H] block output
  readonly part: number; // [H] one MLP part's output
  readonly q: number; // [heads·hd]
  readonly k: number; // [kvHeads·hd] new key (rotated), before it is written to the cache
  readonly v: number; // [kvHeads·hd]
  readonly att: number; // [heads·hd] attention output
  readonly hb: number; // [largest part] gate, then gelu(gate)·up
  readonly hb2: number; // [largest part] up
  readonly cos: number; // [hd]
  readonly sin: number; // [hd]
  readonly logits: number; // [largest head slice]
}

/** Rows of the largest MLP part of `layers`. */
export function widestPart(layers: readonly LayerSlice[]): number {
  return Math.max(1, ...layers.flatMap((l) => l.parts.map((p) => p.to - p.from)));
}

export class Forward {
  private readonly s: Scratch;
  private scores = -1; // f32[scoresCap]
  private scoresCap = 0;
  private readonly loraScratch: LoraScratch;
  private readonly baseScratch: number;

  constructor(
    private readonly kernel: Kernel,
    private readonly config: ModelConfig,
    private readonly layers: readonly LayerSlice[],
    private readonly head: readonly HeadSlice[],
    private readonly linear: Linear,
  ) {
    const t = config.text;
    const wide = widestPart(layers);
    const sizes = {
      x: t.hidden, xb: t.hidden, xb2: t.hidden, part: t.hidden, q: t.heads * t.headDim, k: t.kvHeads * t.headDim, v: t.kvHeads * t.headDim,
      att: t.heads * t.headDim, hb: wide, hb2: wide, cos: t.headDim, sin: t.headDim,
      logits: Math.max(1, ...head.map((h) => h.to - h.from)),
    };
    const s: Record<string, number> = {};
    for (const [name, n] of Object.entries(sizes)) s[name] = kernel.heap.alloc(4 * n);
    this.s = s as unknown as Scratch;
    this.baseScratch = Object.values(sizes).reduce((a, n) => a + 4 * n, 0);
    this.loraScratch = new LoraScratch(kernel);
  }

  /** Bytes of scratch held (the adapters' low-rank products included). */
  get scratchBytes(): number {
    return this.baseScratch + this.loraScratch.bytes;
  }

  /**
   * Appends one token (its embedding row `token`, f32[H]) to `seq` and, when `logits` (f32[vocab]) is given,
   * writes the next-token logits into it. `out.hidden` (f32[H]) receives the row after this engine's layers;
   * `out.partial` the parts' sum of a layer whose MLP this engine holds only part of (the row is then the
   * attention block's output, or the input). `lora`: the adapter whose updates every adapted projection adds.
   */
  run(seq: KvSequence, token: Float32Array, logits: Float32Array | null, out: { hidden?: Float32Array; partial?: Float32Array } = {}, lora: KernelAdapter | null = null): void {
    const t = this.config.text;
    const heap = this.kernel.heap;
    const pos = seq.length; // cache index of the new token (position pos + 1, 1-based)
    seq.reserve(pos + 1);
    this.reserveScores(pos + 1);
    heap.f32(this.s.x, t.hidden).set(token);
    const rope = ropeTables(t, pos + 1, 1);
    heap.f32(this.s.cos, t.headDim).set(rope.cos);
    heap.f32(this.s.sin, t.headDim).set(rope.sin);
    for (const layer of this.layers) this.layer(layer, seq, pos, out.partial ?? null, lora);
    seq.length = pos + 1;
    if (out.hidden) out.hidden.set(this.kernel.heap.f32(this.s.x, this.config.text.hidden));
    if (logits) this.logits(logits);
  }

  /** Logits of a final hidden row f32[H] (not appended to any cache). */
  logitsOf(row: Float32Array, out: Float32Array): void {
    this.kernel.heap.f32(this.s.x, this.config.text.hidden).set(row);
    this.logits(out);
  }

  private layer(w: LayerSlice, seq: KvSequence, pos: number, partial: Float32Array | null, lora: KernelAdapter | null): void {
    const t = this.config.text;
    const ex = this.kernel.exports;
    const s = this.s;
    if (w.attention) this.attention(w, seq, pos, lora);
    ex.rmsNorm(s.xb, s.x, w.mlpNorm, t.hidden, t.rmsNormEps);
    this.mlp(w, s.xb, s.xb2, lora);
    if (!w.complete) {
      // One part of a cut layer: its sum goes back as it is; the caller adds every part's, norms, adds the residual.
      if (!partial) throw new Error(`this engine holds part of decoder layer ${w.index}'s MLP: pass out.partial`);
      partial.set(this.kernel.heap.f32(s.xb2, t.hidden));
      return;
    }
    if (w.postFfNorm !== null) ex.rmsNorm(s.xb2, s.xb2, w.postFfNorm, t.hidden, t.rmsNormEps);
    ex.addInto(s.x, s.xb2, t.hidden);
  }

  /** The attention block of one token: q/k/v, RoPE, the cache, attention, o, (post-attention norm), residual. */
  private attention(w: LayerSlice, seq: KvSequence, pos: number, lora: KernelAdapter | null): void {
    const t = this.config.text;
    const ex = this.kernel.exports;
    const s = this.s;
    const hd = t.headDim;
    const lin = this.linear;
    const a = w.attention!;
    ex.rmsNorm(s.xb, s.x, a.inputNorm, t.hidden, t.rmsNormEps);
    lin.prepare(s.xb, t.hidden);
    lin.apply(a.q, s.q);
    lin.apply(a.k, s.k);
    lin.apply(a.v, s.v);
    const p = `dec.l${w.index}`;
    this.adapt(lora, `${p}.attn.q`, s.xb, s.q);
    this.adapt(lora, `${p}.attn.k`, s.xb, s.k);
    this.adapt(lora, `${p}.attn.v`, s.xb, s.v);
    ex.rope(s.q, s.cos, s.sin, t.heads, hd);
    ex.rope(s.k, s.cos, s.sin, t.kvHeads, hd);
    const l = seq.slot(w.index);
    const mem = new Float32Array(this.kernel.heap.memory.buffer);
    for (let kv = 0; kv < t.kvHeads; kv++) {
      mem.copyWithin(seq.at("keys", l, kv, pos) / 4, s.k / 4 + kv * hd, s.k / 4 + (kv + 1) * hd);
      mem.copyWithin(seq.at("values", l, kv, pos) / 4, s.v / 4 + kv * hd, s.v / 4 + (kv + 1) * hd);
    }
    const window = isSlidingLayer(t, w.index) && t.slidingWindow !== null ? t.slidingWindow : null;
    const first = window === null ? 0 : Math.max(0, pos + 1 - window); // hides j ≤ pos − window
    const scale = t.queryPreAttnScalar ** -0.5;
    ex.attention(s.att, s.q, seq.keys[l], seq.values[l], this.scores, t.heads, t.kvHeads, hd, seq.capacity, pos + 1, first, scale, t.attnLogitSoftcap ?? 0);
    lin.prepare(s.att, t.heads * hd);
    lin.apply(a.o, s.xb2);
    this.adapt(lora, `${p}.attn.o`, s.att, s.xb2);
    if (a.postAttnNorm !== null) ex.rmsNorm(s.xb2, s.xb2, a.postAttnNorm, t.hidden, t.rmsNormEps);
    ex.addInto(s.x, s.xb2, t.hidden);
  }

  /** out[H] = Σ over the parts (in order) of down(gelu(gate(x)) · up(x)), for x = xb f32[H]. */
  private mlp(w: LayerSlice, xb: number, out: number, lora: KernelAdapter | null): void {
    const t = this.config.text;
    const ex = this.kernel.exports;
    const s = this.s;
    w.parts.forEach((p, i) => {
      const rows = p.to - p.from;
      this.linear.prepare(xb, t.hidden);
      this.linear.apply(p.gate, s.hb);
      this.linear.apply(p.up, s.hb2);
      const name = `dec.l${w.index}`;
      this.adapt(lora, loraKey(`${name}.gate`, p.from), xb, s.hb);
      this.adapt(lora, loraKey(`${name}.up`, p.from), xb, s.hb2);
      ex.geluMul(s.hb, s.hb2, rows);
      this.linear.prepare(s.hb, rows);
      this.linear.apply(p.down, i === 0 ? out : s.part);
      this.adapt(lora, loraKey(`${name}.down`, p.from), s.hb, i === 0 ? out : s.part);
      if (i > 0) ex.addInto(out, s.part, t.hidden);
    });
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

  /** y += scale · B(A x) when `lora` adapts the matrix `key` (x, y addresses of f32 rows). */
  private adapt(lora: KernelAdapter | null, key: string, x: number, y: number): void {
    const f = lora?.get(key);
    if (f) this.loraScratch.addRow(f, x, y);
  }

  private reserveScores(n: number): void {
    if (n <= this.scoresCap) return;
    if (this.scores >= 0) this.kernel.heap.release(this.scores);
    this.scoresCap = Math.max(n, 2 * this.scoresCap, 256);
    this.scores = this.kernel.heap.alloc(4 * this.scoresCap);
  }
}
