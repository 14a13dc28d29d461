/**
 * The prefill in the kernel module: L prompt rows through decoder layers at once, as GEMMs over the weights in
 * their stored format (gemm.ts: int8/int4 by integer dot products on rows quantised at run time, or each 8-row
 * panel dequantised into a small scratch; fp32 by fused multiply-adds), each layer's keys and values
 * written straight into the session's {@link KvSequence}. Semantics of the ONNX decoder graph: the whole block
 * of new rows attends bidirectionally (PaliGemma's prefix), earlier cache positions are visible, Gemma 2's
 * sliding window hides key j from query i when j ≤ i − window, scores are scaled and soft-capped.
 *
 * Per layer, two passes over row chunks of {@link PREFILL_CHUNK}: (1) norm, q/k/v, RoPE, keys/values into the
 * cache (queries kept for every row); (2) per head softmax(q·Kᵀ)·V against all keys, o, residual, then the MLP
 * (Σ over its parts) and its residual. Rows never need each other except through the cache, so scratch is
 * sized by the chunk, not the prompt.
 */
import { isSlidingLayer, type ModelConfig } from "../model/config.ts";
import { ropeTables } from "../engine/positions.ts";
import { MLP_COLUMNS, ROW_CHUNK as PREFILL_CHUNK } from "../model/stage-memory.ts";
import { Buffers } from "./buffers.ts";
import { DEFAULT_GEMM, gemmScratch, gemmSlice, type GemmCompute } from "./gemm.ts";
import type { KvSequence } from "./cache.ts";
import type { HeadSlice, LayerSlice } from "./decoder-weights.ts";
import { sliceOf, type KernelMatrix, type MatrixSlice } from "./matrix.ts";
import type { Kernel } from "./module.ts";
import { headRows } from "./head-rows.ts";
import { keysIntoCache, type PackedKeys } from "./prefill-keys.ts";
import { LoraScratch, loraKey, type KernelAdapter, type LoraFactors } from "./lora.ts";

/** Rows per GEMM chunk, and MLP columns per block: the sizes the resident-size model budgets. */
export { MLP_COLUMNS, ROW_CHUNK as PREFILL_CHUNK } from "../model/stage-memory.ts";

/** gemm flag: add the result to the old C. */
const ACCUMULATE = 1;

/** Caller-owned arrays (f32[rows, H] or longer) a call's output rows are written to, instead of fresh ones. */
export interface RowsOut {
  readonly hidden: Float32Array;
  readonly partial?: Float32Array;
}

export class Prefill {
  private readonly buf: Buffers;
  private readonly lora: LoraScratch;

  constructor(
    private readonly kernel: Kernel,
    private readonly config: ModelConfig,
    private readonly layers: readonly LayerSlice[],
    /** Intermediate columns per MLP block (a multiple of the block size; default {@link MLP_COLUMNS}). */
    private readonly mlpColumns = MLP_COLUMNS,
    /** How the GEMMs meet int8/int4 weights (default {@link DEFAULT_GEMM}, gemm.ts). */
    private readonly compute: GemmCompute = DEFAULT_GEMM,
  ) {
    this.buf = new Buffers(kernel.heap);
    this.lora = new LoraScratch(kernel);
  }

  /** Bytes of scratch held now (it grows with the longest prompt seen). */
  get scratchBytes(): number {
    return this.buf.bytes + this.lora.bytes;
  }

  /**
   * Runs `rows` new rows (hidden f32[rows, H]) through this engine's layers, appending them to `seq`. Rows
   * before cache index `prefixEnd` see each other (default: all of them, the prompt); later ones are causal.
   * Returns the output rows f32[rows, H] (in `into`'s arrays when given, else fresh ones): for a layer whose MLP
   * this engine holds only part of, `hidden` is the rows after the attention block (as they came, without one)
   * and `partial` its parts' sum. `adapter`: the LoRA adapter whose updates every adapted projection adds.
   */
  run(seq: KvSequence, hidden: Float32Array, rows: number, prefixEnd?: number, into?: RowsOut, adapter: KernelAdapter | null = null): { hidden: Float32Array; partial: Float32Array | null } {
    const t = this.config.text;
    const heap = this.kernel.heap;
    const h = t.hidden;
    const past = seq.length;
    const total = past + rows;
    seq.reserve(total);
    const x = this.buf.get("x", 4 * rows * h);
    heap.f32(x, rows * h).set(hidden.subarray(0, rows * h));
    let cos = 0;
    let sin = 0;
    if (this.layers.some((l) => l.attention !== null)) {
      // RoPE tables and the queries of all rows: an MLP-only part holds neither
      cos = this.buf.get("cos", 4 * rows * t.headDim);
      sin = this.buf.get("sin", 4 * rows * t.headDim);
      this.buf.get("q", 4 * rows * t.heads * t.headDim);
      const rope = ropeTables(t, past + 1, rows);
      heap.f32(cos, rows * t.headDim).set(rope.cos);
      heap.f32(sin, rows * t.headDim).set(rope.sin);
    }
    const partial = this.layers.some((l) => !l.complete) ? this.buf.get("partial", 4 * rows * h) : 0;
    for (const layer of this.layers) this.layer(layer, seq, x, cos, sin, past, rows, prefixEnd ?? total, partial, adapter);
    seq.length = total;
    const copy = (at: number, to: Float32Array | undefined) => (to ? (to.set(heap.f32(at, rows * h)), to) : heap.f32(at, rows * h).slice());
    return { hidden: copy(x, into?.hidden), partial: partial ? copy(partial, into?.partial) : null };
  }

  /** Rows of final norm + the head slices + final soft-cap: logits f32[rows, vocab] for hidden f32[rows, H]. */
  headRows(head: readonly HeadSlice[], hidden: Float32Array, rows: number): Float32Array {
    return headRows(this, this.kernel, this.config, head, hidden, rows);
  }

  private layer(w: LayerSlice, seq: KvSequence, x: number, cos: number, sin: number, past: number, rows: number, prefixEnd: number, partial: number, lora: KernelAdapter | null): void {
    this.size(w, rows, past + rows);
    const attention = w.attention ? keysIntoCache(this, this.kernel, this.config.text, w, seq, x, cos, sin, past, rows, lora) : null;
    this.attendRows(w, attention, x, past, past + rows, rows, prefixEnd, partial, lora);
  }

  /**
   * Sizes every scratch buffer a layer of `rows` rows against `total` keys uses, before any address is held (a
   * later, larger request would move it). Sequence-parallel prefill (prefill-spread.ts) calls it per block.
   */
  size(w: LayerSlice, rows: number, total: number): void {
    const t = this.config.text;
    const h = t.hidden;
    const R = Math.min(PREFILL_CHUNK, rows);
    const wide = Math.min(this.mlpColumns, Math.max(...w.parts.map((p) => p.to - p.from)));
    if (!w.complete) this.buf.get("partial", 4 * rows * h);
    for (const [name, floats] of [["x", rows * h], ["xb", R * h], ["yb", R * h], ["gate", R * wide], ["up", R * wide]] as const) this.buf.get(name, 4 * floats);
    const scratch = gemmScratch(R, Math.max(h, t.heads * t.headDim, wide, total, t.headDim), blockSizeOf(w));
    this.buf.get("work", scratch.work);
    this.buf.get("panel", scratch.panel);
    if (!w.attention) return;
    for (const [name, floats] of [["cos", rows * t.headDim], ["sin", rows * t.headDim], ["q", rows * t.heads * t.headDim], ["kb", R * t.kvHeads * t.headDim], ["vb", R * t.kvHeads * t.headDim], ["ctx", R * t.heads * t.headDim], ["scores", R * total]] as const) this.buf.get(name, 4 * floats);
    this.buf.get("kpack", 4 * t.kvHeads * t.headDim * Math.ceil(total / 8) * 8);
    this.buf.get("vpack", 4 * t.kvHeads * total * Math.ceil(t.headDim / 8) * 8);
  }

  /** The address of scratch buffer `name`, holding at least `bytes` (growing it moves it). */
  scratch(name: string, bytes = 0): number {
    return this.buf.get(name, bytes);
  }

  /**
   * Pass 2 of layer `w` for `rows` rows at x (their first at cache position `at`) against `total` keys:
   * per row chunk the attention (when `keys` are given: the packed cache), then the MLP (Σ over its parts) and
   * its residual; for one part of a cut layer the part's sum goes to `partial` instead.
   */
  attendRows(w: LayerSlice, keys: PackedKeys | null, x: number, at: number, total: number, rows: number, prefixEnd: number, partial: number, lora: KernelAdapter | null): void {
    const t = this.config.text;
    const ex = this.kernel.exports;
    const h = t.hidden;
    const R = Math.min(PREFILL_CHUNK, rows);
    const wide = Math.min(this.mlpColumns, Math.max(...w.parts.map((p) => p.to - p.from)));
    const xb = this.buf.get("xb", 4 * R * h);
    const yb = this.buf.get("yb", 4 * R * h);
    const gate = this.buf.get("gate", 4 * R * wide);
    const up = this.buf.get("up", 4 * R * wide);
    const name = `dec.l${w.index}`;
    for (let r0 = 0; r0 < rows; r0 += R) {
      const n = Math.min(R, rows - r0);
      const xr = x + 4 * r0 * h;
      if (keys) this.attend(w, keys, xr, at, total, r0, n, R, prefixEnd, lora);
      this.norm(xb, xr, w.mlpNorm, n);
      let first = true;
      for (const p of w.parts) {
        const pr = p.to - p.from;
        const fGate = lora?.get(loraKey(`${name}.gate`, p.from));
        const fUp = lora?.get(loraKey(`${name}.up`, p.from));
        const fDown = lora?.get(loraKey(`${name}.down`, p.from));
        if (fGate) this.project(fGate, "lora_gate", xb, h, n, 0, h, false);
        if (fUp) this.project(fUp, "lora_up", xb, h, n, 0, h, false);
        for (let c0 = 0; c0 < pr; c0 += this.mlpColumns) {
          const ic = Math.min(this.mlpColumns, pr - c0);
          this.gemm(gate, ic, xb, h, sliceOf(p.gate, c0, ic), 0, n);
          this.gemm(up, ic, xb, h, sliceOf(p.up, c0, ic), 0, n);
          if (fGate) this.expand(fGate, "lora_gate", gate, ic, n, c0, ic);
          if (fUp) this.expand(fUp, "lora_up", up, ic, n, c0, ic);
          ex.geluMul(gate, up, n * ic);
          this.gemm(yb, h, gate, ic, sliceOf(p.down, 0, h, c0, ic), 0, n, first ? 0 : ACCUMULATE);
          if (fDown) this.project(fDown, "lora_down", gate, ic, n, c0, ic, c0 > 0);
          first = false;
        }
        if (fDown) this.expand(fDown, "lora_down", yb, h, n, 0, h);
      }
      if (!w.complete) {
        // One part of a cut layer: its sum goes back as it is; the caller adds every part's, norms, adds the residual.
        this.kernel.heap.u8(partial + 4 * r0 * h, 4 * n * h).set(this.kernel.heap.u8(yb, 4 * n * h));
        continue;
      }
      if (w.postFfNorm !== null) this.norm(yb, yb, w.postFfNorm, n);
      ex.addInto(xr, yb, n * h);
    }
  }

  /** Normalises `n` rows of H (Gemma's RMSNorm with (1 + w)). */
  private norm(dst: number, src: number, weight: number, n: number): void {
    const t = this.config.text;
    for (let r = 0; r < n; r++) this.kernel.exports.rmsNorm(dst + 4 * r * t.hidden, src + 4 * r * t.hidden, weight, t.hidden, t.rmsNormEps);
  }

  /**
   * Queries (into the "q" scratch, every row kept), keys and values of `rows` rows at x, RoPE'd by the tables at
   * cos/sin; each row chunk's keys and values f32[n, kvHeads·hd] (at kb, vb) handed to `sink`.
   */
  qkv(w: LayerSlice, x: number, cos: number, sin: number, rows: number, lora: KernelAdapter | null, sink: (kb: number, vb: number, r0: number, n: number) => void): void {
    const t = this.config.text;
    const ex = this.kernel.exports;
    const { hidden: h, heads, kvHeads, headDim: hd } = t;
    const qd = heads * hd;
    const kvd = kvHeads * hd;
    const a = w.attention!;
    const R = Math.min(PREFILL_CHUNK, rows);
    const q = this.buf.get("q", 4 * rows * qd);
    const xb = this.buf.get("xb", 4 * R * h);
    const kb = this.buf.get("kb", 4 * R * kvd);
    const vb = this.buf.get("vb", 4 * R * kvd);
    for (let r0 = 0; r0 < rows; r0 += R) {
      const n = Math.min(R, rows - r0);
      this.norm(xb, x + 4 * r0 * h, a.inputNorm, n);
      this.mm(q + 4 * r0 * qd, qd, xb, h, a.q, 0, n);
      this.mm(kb, kvd, xb, h, a.k, 0, n);
      this.mm(vb, kvd, xb, h, a.v, 0, n);
      this.adapt(lora, `dec.l${w.index}.attn.q`, q + 4 * r0 * qd, qd, xb, h, n);
      this.adapt(lora, `dec.l${w.index}.attn.k`, kb, kvd, xb, h, n);
      this.adapt(lora, `dec.l${w.index}.attn.v`, vb, kvd, xb, h, n);
      for (let r = 0; r < n; r++) {
        const c = cos + 4 * (r0 + r) * hd;
        const s = sin + 4 * (r0 + r) * hd;
        ex.rope(q + 4 * (r0 + r) * qd, c, s, heads, hd);
        ex.rope(kb + 4 * r * kvd, c, s, kvHeads, hd);
      }
      sink(kb, vb, r0, n);
    }
  }

  /**
   * Pass 2 for rows [r0, r0 + n) at xr over all `total` cache positions: per head softmax(q·Kᵀ)·V, o,
   * (post-attention norm), residual. `R` is the chunk the scratch was sized for (n ≤ R).
   */
  private attend(w: LayerSlice, k: PackedKeys, xr: number, past: number, total: number, r0: number, n: number, R: number, prefixEnd: number, lora: KernelAdapter | null): void {
    const t = this.config.text;
    const ex = this.kernel.exports;
    const { hidden: h, heads, kvHeads, headDim: hd } = t;
    const qd = heads * hd;
    const a = w.attention!;
    const ctx = this.buf.get("ctx", 4 * R * qd);
    const scores = this.buf.get("scores", 4 * R * total);
    const yb = this.buf.get("yb", 4 * R * h);
    const work = this.buf.get("work", 4 * R * Math.max(h, qd, total, hd));
    const window = isSlidingLayer(t, w.index) && t.slidingWindow !== null ? t.slidingWindow : 0;
    const scale = t.queryPreAttnScalar ** -0.5;
    const group = heads / kvHeads;
    for (let head = 0; head < heads; head++) {
      const g = Math.floor(head / group);
      ex.gemm(scores, total, k.q + 4 * (r0 * qd + head * hd), qd, k.kPack + 4 * g * hd * k.t8, 0, n, total, hd, 0, work);
      ex.attnSoftmaxRows(scores, total, n, past + r0, total, prefixEnd, window, scale, t.attnLogitSoftcap ?? 0);
      ex.gemm(ctx + 4 * head * hd, qd, scores, total, k.vPack + 4 * g * total * k.hd8, 0, n, hd, total, 0, work);
    }
    this.mm(yb, h, ctx, qd, a.o, 0, n);
    this.adapt(lora, `dec.l${w.index}.attn.o`, yb, h, ctx, qd, n);
    if (a.postAttnNorm !== null) this.norm(yb, yb, a.postAttnNorm, n);
    ex.addInto(xr, yb, n * h);
  }

  /** c[m, n] (ldc) += scale · B(A a) when `lora` adapts the matrix `key` (a[m, k], lda). */
  private adapt(lora: KernelAdapter | null, key: string, c: number, ldc: number, a: number, lda: number, m: number): void {
    const f = lora?.get(key);
    if (!f) return;
    this.project(f, "lora_t", a, lda, m, 0, f.k, false);
    this.expand(f, "lora_t", c, ldc, m, 0, f.n);
  }

  /** T_slot (+)= a[m, kc] · A[:, c0 : c0 + kc]ᵀ (lora.ts), with this prefill's gemm scratch. */
  private project(f: LoraFactors, slot: string, a: number, lda: number, m: number, c0: number, kc: number, accumulate: boolean): void {
    this.lora.project(f, slot, a, lda, m, c0, kc, accumulate, this.buf.get("work", 4 * m * kc), this.buf.get("panel", 4 * 8 * kc));
  }

  /** c[m, nr] (ldc) += T_slot · B[r0 : r0 + nr, :]ᵀ (lora.ts). */
  private expand(f: LoraFactors, slot: string, c: number, ldc: number, m: number, r0: number, nr: number): void {
    this.lora.expand(f, slot, c, ldc, m, r0, nr, this.buf.get("work", 4 * m * f.rank), this.buf.get("panel", 4 * 8 * f.rank));
  }

  /** c[m, W.n] (ldc) = a[m, W.k] (lda) · Wᵀ (+ bias) per flags, over the weights as stored. */
  mm(c: number, ldc: number, a: number, lda: number, w: KernelMatrix, bias: number, m: number, flags = 0): void {
    this.gemm(c, ldc, a, lda, sliceOf(w), bias, m, flags);
  }

  /** c[m, s.n] (ldc) = a[m, s.k] (lda) · sᵀ (+ bias) per flags, for a slice of a stored matrix. */
  gemm(c: number, ldc: number, a: number, lda: number, s: MatrixSlice, bias: number, m: number, flags = 0): void {
    const scratch = gemmScratch(m, s.k, s.blockSize);
    const work = this.buf.get("work", scratch.work);
    const panel = this.buf.get("panel", scratch.panel);
    gemmSlice(this.kernel, this.compute, c, ldc, a, lda, s, bias, m, flags, work, panel);
  }
}

/** The block size of a layer's quantised weights (1 for float32). */
export function blockSizeOf(w: LayerSlice): number {
  const m = w.parts[0]?.gate ?? w.attention?.q;
  return m && m.kind !== "f32" ? m.blockSize : 1;
}
