/**
 * The SigLIP tower spread over isolates by rows (shared/api/spread-rpc.ts): the image's N patches cut into
 * blocks, each block's rows run through a vision stage's layers by whichever isolate holds it, the layer's keys
 * and values of all N rows exchanged between the two passes of every layer (through the coordinator):
 *
 *   keys(block)            LayerNorm 1, q/k/v of the block's rows → its keys and values f32[m, D] (queries kept)
 *   attend(block, all kv)  per head softmax(q·Kᵀ/√hd)·V over all N rows, o + residual, LayerNorm 2, fc1 + gelu,
 *                          fc2 + residual, for the block's rows
 *
 * The same kernel calls as VisionEncoder.layer on fewer rows (every GEMM, norm and softmax is row by row), so a
 * block's rows, and the soft tokens the last stage projects them to, are those of the whole tower's.
 */
import { InputError } from "../errors.ts";
import type { ModelConfig } from "../model/config.ts";
import type { GemmCompute } from "./gemm.ts";
import type { Kernel } from "./module.ts";
import { im2col, VisionEncoder } from "./vision.ts";
import type { VisionSlice } from "./vision-weights.ts";

/** gemm flags (kernels/assembly/gemm.ts): add the old C; apply gelu_tanh after the bias. */
const ACCUMULATE = 1;
const GELU = 2;

/** A block of rows between passes: its rows f32[m, D] and the current layer's queries f32[m, D]. */
export interface VisionBlock {
  hidden: Float32Array;
  queries: Float32Array | null;
}

/** One engine's vision stages run on blocks of an image's rows (embedding, the two passes per layer, projector). */
export class VisionSpread {
  private readonly encoders = new Map<number, VisionEncoder>();
  private readonly bufs = new Map<string, { at: number; bytes: number }>();

  constructor(
    private readonly kernel: Kernel,
    private readonly config: ModelConfig,
    private readonly slices: readonly VisionSlice[],
    private readonly compute?: GemmCompute,
  ) {}

  /** Global indices of the vision layers held here, in order. */
  get layers(): number[] {
    return this.slices.flatMap((s) => s.layers.map((_, i) => s.from + i));
  }

  /** The block's rows after the patch embedding (first stage): rows [offset, offset + m) of pixels f32[1, 3, S, S]. */
  embed(pixels: Float32Array, offset: number, m: number): Float32Array {
    const { vision: v, imageTokens: n } = this.config;
    const first = this.slices[0];
    if (!first?.embed) throw new Error("this engine does not hold the patch embedding");
    if (pixels.length !== 3 * v.imageSize ** 2) throw new InputError("invalid_request", `pixel values must be float32[1, 3, ${v.imageSize}, ${v.imageSize}]`, "pixel_values");
    const pp = 3 * v.patchSize ** 2;
    const heap = this.kernel.heap;
    const patches = this.buf("patches", 4 * n * pp);
    im2col(pixels, v.imageSize, v.patchSize, heap.f32(patches, n * pp));
    const x = this.buf("x", 4 * m * v.hidden);
    this.encoder(m).linear(x, v.hidden, patches + 4 * offset * pp, pp, first.embed.patch);
    this.kernel.exports.addInto(x, first.embed.pos + 4 * offset * v.hidden, m * v.hidden);
    return heap.f32(x, m * v.hidden).slice();
  }

  /** Pass 1 of vision layer `layer` for a block of `m` rows: queries kept in `block`, keys and values f32[m, D] out. */
  keys(layer: number, block: VisionBlock, m: number): { keys: Float32Array; values: Float32Array } {
    const w = this.layer(layer);
    const d = this.config.vision.hidden;
    const heap = this.kernel.heap;
    const enc = this.encoder(m);
    const x = this.enter(block, m);
    const h = this.buf("h", 4 * m * d);
    const qkv = this.buf("qkv", 4 * m * 3 * d);
    this.kernel.exports.layerNorm(h, x, w.ln1.w, w.ln1.b, m, d, this.config.vision.layerNormEps);
    enc.linear(qkv, 3 * d, h, d, w.q);
    enc.linear(qkv + 4 * d, 3 * d, h, d, w.k);
    enc.linear(qkv + 8 * d, 3 * d, h, d, w.v);
    const all = heap.f32(qkv, m * 3 * d);
    const cols = (c: number) => {
      const out = new Float32Array(m * d);
      for (let r = 0; r < m; r++) out.set(all.subarray(r * 3 * d + c * d, r * 3 * d + (c + 1) * d), r * d);
      return out;
    };
    block.queries = cols(0);
    return { keys: cols(1), values: cols(2) };
  }

  /** Pass 2 of vision layer `layer` for the block against every row's keys and values f32[N, D]; `block.hidden` advances. */
  attend(layer: number, block: VisionBlock, m: number, keys: Float32Array, values: Float32Array): void {
    const w = this.layer(layer);
    const { vision: v, imageTokens: n } = this.config;
    const d = v.hidden;
    const hd = d / v.heads;
    if (!block.queries || keys.length !== n * d || values.length !== n * d) throw new Error(`vision layer ${layer}: attention needs the block's queries and keys, values f32[${n}, ${d}]`);
    const ex = this.kernel.exports;
    const heap = this.kernel.heap;
    const pad = (x: number) => Math.ceil(x / 8) * 8;
    const enc = this.encoder(m);
    const x = this.enter(block, m);
    const [q, kAll, vAll, kp, vp, scores, ctx, h, mid, work] = [["q", m * d], ["kall", n * d], ["vall", n * d], ["kp", hd * pad(n)], ["vp", n * pad(hd)], ["scores", m * n], ["ctx", m * d], ["h", m * d], ["mid", m * v.intermediate], ["work", m * Math.max(d, n, hd)]].map(([name, floats]) => this.buf(name as string, 4 * (floats as number)));
    heap.f32(q, m * d).set(block.queries);
    heap.f32(kAll, n * d).set(keys);
    heap.f32(vAll, n * d).set(values);
    for (let head = 0; head < v.heads; head++) {
      const col = 4 * head * hd;
      ex.packB(kp, kAll + col, 1, d, hd, n);
      ex.gemm(scores, n, q + col, d, kp, 0, m, n, hd, 0, work);
      ex.softmaxRows(scores, n, m, n, hd ** -0.5);
      ex.packB(vp, vAll + col, d, 1, n, hd);
      ex.gemm(ctx + col, d, scores, n, vp, 0, m, hd, n, 0, work);
    }
    enc.linear(x, d, ctx, d, w.o, ACCUMULATE);
    ex.layerNorm(h, x, w.ln2.w, w.ln2.b, m, d, v.layerNormEps);
    enc.linear(mid, v.intermediate, h, d, w.fc1, GELU);
    enc.linear(x, d, mid, v.intermediate, w.fc2, ACCUMULATE);
    block.hidden = heap.f32(x, m * d).slice();
    block.queries = null;
  }

  /** The last stage's post-LayerNorm and projector over the block's rows: soft tokens f32[m, P]. */
  project(block: VisionBlock, m: number): Float32Array {
    const head = this.slices.at(-1)?.head;
    if (!head) throw new Error("this engine does not hold the projector");
    const { vision: v, projectionDim: p } = this.config;
    const x = this.enter(block, m);
    const out = this.buf("out", 4 * m * p);
    this.kernel.exports.layerNorm(x, x, head.post.w, head.post.b, m, v.hidden, v.layerNormEps);
    this.encoder(m).linear(out, p, x, v.hidden, head.proj);
    return this.kernel.heap.f32(out, m * p).slice();
  }

  private layer(index: number) {
    const s = this.slices.find((x) => index >= x.from && index < x.from + x.layers.length);
    if (!s) throw new RangeError(`this engine holds no vision layer ${index}`);
    return s.layers[index - s.from];
  }

  /** The block's rows into the "x" scratch. */
  private enter(block: VisionBlock, m: number): number {
    const d = this.config.vision.hidden;
    if (block.hidden.length !== m * d) throw new Error(`a block of ${m} rows needs f32[${m}, ${d}], got ${block.hidden.length} values`);
    const x = this.buf("x", 4 * m * d);
    this.kernel.heap.f32(x, m * d).set(block.hidden);
    return x;
  }

  /** An encoder whose GEMMs take `m` rows (its own scratch sized for them). */
  private encoder(m: number): VisionEncoder {
    let e = this.encoders.get(m);
    if (!e) {
      const v = this.config.vision;
      e = new VisionEncoder(this.kernel, { tokens: m, hidden: v.hidden, heads: v.heads, intermediate: v.intermediate, eps: v.layerNormEps, extraK: 3 * v.patchSize ** 2 }, this.compute);
      this.encoders.set(m, e);
    }
    return e;
  }

  /** Scratch buffer `name` of at least `bytes` (contents not kept when it grows). */
  private buf(name: string, bytes: number): number {
    const b = this.bufs.get(name);
    if (b && b.bytes >= bytes) return b.at;
    if (b) this.kernel.heap.release(b.at);
    const at = this.kernel.heap.alloc(bytes);
    this.bufs.set(name, { at, bytes });
    return at;
  }
}
