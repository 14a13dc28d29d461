/**
 * One decode step for several sequences at once (the sessions a pipeline stage steps in one call): the same
 * per-token computation as {@link Forward.run}, op for op, each sequence in its own activation buffers, with
 * every weight matrix applied to all of them in one pass over its weights (linear-batch.ts: the kernel's multi-vector
 * GEMVs, each row of weights loaded and dequantised once for every sequence). Attention stays per
 * sequence (each has its own cache and position). Results are bit-identical to stepping each sequence alone.
 * Head slices likewise score several final rows in one pass (`logits`).
 */
import { isSlidingLayer, type ModelConfig } from "../model/config.ts";
import { ropeTables } from "../engine/positions.ts";
import type { KvSequence } from "./cache.ts";
import type { HeadSlice, LayerSlice } from "./decoder-weights.ts";
import { widestPart } from "./forward.ts";
import { Linear, type QuantCompute, type WeightKind } from "./linear.ts";
import { LinearBatch } from "./linear-batch.ts";
import type { Kernel } from "./module.ts";
import { LoraScratch, loraKey, type KernelAdapter } from "./lora.ts";

/** One sequence's activation buffers (addresses of f32 arrays in kernel memory), as Forward's scratch. */
interface Slot {
  readonly x: number; // [H]
  readonly xb: number; // [H]
  readonly xb2: number; // [H]
  readonly part: number; // [H]
  readonly q: number; // [heads·hd]
  readonly k: number; // [kvHeads·hd]
  readonly v: number; // [kvHeads·hd]
  readonly att: number; // [heads·hd]
  readonly hb: number; // [largest part]
  readonly hb2: number; // [largest part]
  readonly cos: number; // [hd]
  readonly sin: number; // [hd]
  readonly linear: Linear;
}

/** A step's rows out, per sequence: the row after the layers, and a cut layer's parts' sum. */
export interface BatchOut {
  readonly hidden: Float32Array;
  readonly partial: Float32Array | null;
}

export class ForwardBatch {
  private readonly slots: Slot[] = [];
  private scores = -1;
  private scoresCap = 0;
  private lora: LoraScratch | null = null;
  private readonly batch: LinearBatch;

  constructor(
    private readonly kernel: Kernel,
    private readonly config: ModelConfig,
    private readonly layers: readonly LayerSlice[],
    private readonly weights: WeightKind,
    private readonly compute: QuantCompute,
  ) {
    this.batch = new LinearBatch(kernel);
  }

  /** Scratch bytes held (grows with the largest batch seen). */
  get scratchBytes(): number {
    const t = this.config.text;
    const per = 4 * (4 * t.hidden + 2 * t.heads * t.headDim + 2 * t.kvHeads * t.headDim + 2 * widestPart(this.layers) + 2 * t.headDim);
    return this.slots.length * (per + (this.slots[0]?.linear.scratchBytes ?? 0)) + 4 * this.scoresCap + (this.lora?.bytes ?? 0) + this.batch.scratchBytes;
  }

  /**
   * Appends `rows[i]` (f32[H]) to `seqs[i]` through this engine's layers, for every i, in one pass over the weights;
   * with `lora`, every adapted projection of every row adds its update, after the batched base product, as
   * Forward adds it after its GEMV (so each row stays bit-identical to stepping it alone with that adapter).
   */
  run(seqs: readonly KvSequence[], rows: readonly Float32Array[], lora: KernelAdapter | null = null): BatchOut[] {
    this.adapter = lora;
    const t = this.config.text;
    const heap = this.kernel.heap;
    const slots = this.slotsFor(seqs.length);
    const partOf = this.layers.some((l) => !l.complete);
    const partials = seqs.map(() => (partOf ? new Float32Array(t.hidden) : null));
    const pos = seqs.map((s) => s.length);
    seqs.forEach((seq, b) => {
      seq.reserve(pos[b] + 1);
      this.reserveScores(pos[b] + 1);
      heap.f32(slots[b].x, t.hidden).set(rows[b]);
      const rope = ropeTables(t, pos[b] + 1, 1);
      heap.f32(slots[b].cos, t.headDim).set(rope.cos);
      heap.f32(slots[b].sin, t.headDim).set(rope.sin);
    });
    for (const layer of this.layers) this.layer(layer, seqs, slots, pos, partials);
    return seqs.map((seq, b) => {
      seq.length = pos[b] + 1;
      return { hidden: heap.f32(slots[b].x, t.hidden).slice(), partial: partials[b] };
    });
  }

  private adapter: KernelAdapter | null = null;

  /** Per slot: y += scale · B(A x) when the adapter of this run changes matrix `key` (x, y slot buffers). */
  private adapt(key: string, slots: readonly Slot[], x: (s: Slot) => number, y: (s: Slot) => number): void {
    const f = this.adapter?.get(key);
    if (!f) return;
    this.lora ??= new LoraScratch(this.kernel);
    for (const s of slots) this.lora.addRow(f, x(s), y(s));
  }

  private layer(w: LayerSlice, seqs: readonly KvSequence[], slots: readonly Slot[], pos: readonly number[], partials: (Float32Array | null)[]): void {
    const t = this.config.text;
    const ex = this.kernel.exports;
    if (w.attention) this.attention(w, seqs, slots, pos);
    for (const s of slots) ex.rmsNorm(s.xb, s.x, w.mlpNorm, t.hidden, t.rmsNormEps);
    this.mlp(w, slots);
    slots.forEach((s, b) => {
      if (!w.complete) return void partials[b]!.set(this.kernel.heap.f32(s.xb2, t.hidden));
      if (w.postFfNorm !== null) ex.rmsNorm(s.xb2, s.xb2, w.postFfNorm, t.hidden, t.rmsNormEps);
      ex.addInto(s.x, s.xb2, t.hidden);
    });
  }

  private attention(w: LayerSlice, seqs: readonly KvSequence[], slots: readonly Slot[], pos: readonly number[]): void {
    const t = this.config.text;
    const ex = this.kernel.exports;
    const hd = t.headDim;
    const a = w.attention!;
    const lins = slots.map((s) => s.linear);
    for (const s of slots) {
      ex.rmsNorm(s.xb, s.x, a.inputNorm, t.hidden, t.rmsNormEps);
      s.linear.prepare(s.xb, t.hidden);
    }
    this.batch.apply(lins, a.q, slots.map((s) => s.q));
    this.batch.apply(lins, a.k, slots.map((s) => s.k));
    this.batch.apply(lins, a.v, slots.map((s) => s.v));
    const p = `dec.l${w.index}`;
    this.adapt(`${p}.attn.q`, slots, (s) => s.xb, (s) => s.q);
    this.adapt(`${p}.attn.k`, slots, (s) => s.xb, (s) => s.k);
    this.adapt(`${p}.attn.v`, slots, (s) => s.xb, (s) => s.v);
    const window = isSlidingLayer(t, w.index) && t.slidingWindow !== null ? t.slidingWindow : null;
    const scale = t.queryPreAttnScalar ** -0.5;
    slots.forEach((s, b) => {
      const seq = seqs[b];
      ex.rope(s.q, s.cos, s.sin, t.heads, hd);
      ex.rope(s.k, s.cos, s.sin, t.kvHeads, hd);
      const l = seq.slot(w.index);
      const mem = new Float32Array(this.kernel.heap.memory.buffer);
      for (let kv = 0; kv < t.kvHeads; kv++) {
        mem.copyWithin(seq.at("keys", l, kv, pos[b]) / 4, s.k / 4 + kv * hd, s.k / 4 + (kv + 1) * hd);
        mem.copyWithin(seq.at("values", l, kv, pos[b]) / 4, s.v / 4 + kv * hd, s.v / 4 + (kv + 1) * hd);
      }
      const first = window === null ? 0 : Math.max(0, pos[b] + 1 - window);
      ex.attention(s.att, s.q, seq.keys[l], seq.values[l], this.scores, t.heads, t.kvHeads, hd, seq.capacity, pos[b] + 1, first, scale, t.attnLogitSoftcap ?? 0);
      s.linear.prepare(s.att, t.heads * hd);
    });
    this.batch.apply(lins, a.o, slots.map((s) => s.xb2));
    this.adapt(`${p}.attn.o`, slots, (s) => s.att, (s) => s.xb2);
    for (const s of slots) {
      if (a.postAttnNorm !== null) ex.rmsNorm(s.xb2, s.xb2, a.postAttnNorm, t.hidden, t.rmsNormEps);
      ex.addInto(s.x, s.xb2, t.hidden);
    }
  }

  /** Per slot xb2 = Σ over the parts (in order) of down(gelu(gate(xb)) · up(xb)), as Forward's mlp. */
  private mlp(w: LayerSlice, slots: readonly Slot[]): void {
    const t = this.config.text;
    const ex = this.kernel.exports;
    const lins = slots.map((s) => s.linear);
    w.parts.forEach((p, i) => {
      const rows = p.to - p.from;
      for (const s of slots) s.linear.prepare(s.xb, t.hidden);
      this.batch.apply(lins, p.gate, slots.map((s) => s.hb));
      this.batch.apply(lins, p.up, slots.map((s) => s.hb2));
      const name = `dec.l${w.index}`;
      this.adapt(loraKey(`${name}.gate`, p.from), slots, (s) => s.xb, (s) => s.hb);
      this.adapt(loraKey(`${name}.up`, p.from), slots, (s) => s.xb, (s) => s.hb2);
      for (const s of slots) {
        ex.geluMul(s.hb, s.hb2, rows);
        s.linear.prepare(s.hb, rows);
      }
      this.batch.apply(lins, p.down, slots.map((s) => (i === 0 ? s.xb2 : s.part)));
      this.adapt(loraKey(`${name}.down`, p.from), slots, (s) => s.hb, (s) => (i === 0 ? s.xb2 : s.part));
      if (i > 0) for (const s of slots) ex.addInto(s.xb2, s.part, t.hidden);
    });
  }

  /**
   * Head: logits of several final rows in one pass over the tied table, as Forward.logits computes one (final
   * norm, each head slice, soft-cap): `outs[b]` gets row b's logits of vocabulary ids [base, base + length).
   */
  logits(head: readonly HeadSlice[], rows: readonly Float32Array[], outs: readonly Float32Array[], base = 0): void {
    const t = this.config.text;
    const ex = this.kernel.exports;
    const heap = this.kernel.heap;
    const slots = this.slotsFor(rows.length);
    const width = Math.max(1, ...head.map((h) => h.to - h.from));
    while (this.logitBufs.length < slots.length) this.logitBufs.push(heap.alloc(4 * width));
    slots.forEach((s, b) => heap.f32(s.x, t.hidden).set(rows[b]));
    for (const slice of head) {
      const n = slice.to - slice.from;
      for (const s of slots) {
        ex.rmsNorm(s.xb, s.x, slice.norm, t.hidden, t.rmsNormEps);
        s.linear.prepare(s.xb, t.hidden);
      }
      this.batch.apply(slots.map((s) => s.linear), slice.table, this.logitBufs.slice(0, slots.length));
      slots.forEach((_, b) => {
        if (t.finalLogitSoftcap !== null) ex.softcapInPlace(this.logitBufs[b], n, t.finalLogitSoftcap);
        outs[b].set(heap.f32(this.logitBufs[b], n), slice.from - base);
      });
    }
  }

  private readonly logitBufs: number[] = [];

  private slotsFor(n: number): Slot[] {
    const t = this.config.text;
    const heap = this.kernel.heap;
    const wide = widestPart(this.layers);
    while (this.slots.length < n) {
      const f = (count: number) => heap.alloc(4 * count);
      const maxK = Math.max(t.hidden, t.heads * t.headDim, wide);
      this.slots.push({
        x: f(t.hidden), xb: f(t.hidden), xb2: f(t.hidden), part: f(t.hidden), q: f(t.heads * t.headDim), k: f(t.kvHeads * t.headDim), v: f(t.kvHeads * t.headDim),
        att: f(t.heads * t.headDim), hb: f(wide), hb2: f(wide), cos: f(t.headDim), sin: f(t.headDim), linear: new Linear(this.kernel, this.weights, this.compute, maxK),
      });
    }
    return this.slots.slice(0, n);
  }

  private reserveScores(n: number): void {
    if (n <= this.scoresCap) return;
    if (this.scores >= 0) this.kernel.heap.release(this.scores);
    this.scoresCap = Math.max(n, 2 * this.scoresCap, 256);
    this.scores = this.kernel.heap.alloc(4 * this.scoresCap);
  }
}
