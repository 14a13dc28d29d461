/**
 * The SigLIP tower in the kernel module (patch embedding → encoder layers → post-norm → projector) over all
 * image tokens at once, as GEMMs against the weights as stored (gemm.ts: float32 fused multiply-adds with relaxed
 * SIMD; int8/int4 by integer dot products on rows quantised at run time, or dequantised panel by panel, never
 * widened as a whole). onnxruntime-web's WASM GEMM has no
 * fused multiply-add, so this runs the same math about twice as fast inside workerd.
 */
import { InputError } from "../errors.ts";
import type { ModelConfig } from "../model/config.ts";
import { DEFAULT_GEMM, gemmScratch, gemmSlice, type GemmCompute } from "./gemm.ts";
import { sliceOf, type KernelLinear } from "./matrix.ts";
import type { Kernel } from "./module.ts";
import { LoraScratch, type KernelAdapter } from "./lora.ts";
import type { VisionLayerWeights, VisionSlice } from "./vision-weights.ts";

/** gemm flags (kernels/assembly/gemm.ts): add the old C; apply gelu_tanh after the bias. */
const ACCUMULATE = 1;
const GELU = 2;

/** Sizes of the encoder the scratch is laid out for. */
export interface EncoderDims {
  readonly tokens: number; // N
  readonly hidden: number; // D
  readonly heads: number;
  readonly intermediate: number; // I
  readonly eps: number;
  /** Widest other input this encoder's `linear` is given (the patch embedding's 3·p²), 0 if none. */
  readonly extraK: number;
}

/** Runs encoder layers in place on activations x f32[N, D] held in kernel memory. */
export class VisionEncoder {
  private readonly h: number; // normed rows [N, D]
  private readonly qkv: number; // [N, 3D]: q | k | v
  private readonly ctx: number; // [N, D]
  private readonly scores: number; // [N, N]
  private readonly keys: number; // one head's Kᵀ packed: B[hd, N]
  private readonly values: number; // one head's V packed: B[N, hd]
  private readonly mid: number; // [N, I]
  private work: number; // A repacked by gemm: [N, widest k]
  private panel: number; // one weight panel: [8, widest k]
  private workBytes: number;
  private panelBytes: number;
  private readonly fixedBytes: number;
  private readonly lora: LoraScratch;
  private ones = 0; // f32[I] of 1s: gelu in place (geluMul by 1) when an adapter changes fc1

  constructor(
    private readonly kernel: Kernel,
    readonly dims: EncoderDims,
    /** How the GEMMs meet int8/int4 weights (default {@link DEFAULT_GEMM}, gemm.ts). */
    private readonly compute: GemmCompute = DEFAULT_GEMM,
  ) {
    const { tokens: n, hidden: d, heads, intermediate } = dims;
    const hd = d / heads;
    const pad = (x: number) => Math.ceil(x / 8) * 8;
    const wide = Math.max(d, intermediate, n, dims.extraK);
    const sizes = [n * d, 3 * n * d, n * d, n * n, hd * pad(n), n * pad(hd), n * intermediate, n * wide, 8 * wide].map((x) => 4 * x);
    [this.h, this.qkv, this.ctx, this.scores, this.keys, this.values, this.mid, this.work, this.panel] = sizes.map((b) => kernel.heap.alloc(b));
    [this.workBytes, this.panelBytes] = sizes.slice(7);
    this.fixedBytes = sizes.slice(0, 7).reduce((a, b) => a + b, 0);
    this.lora = new LoraScratch(kernel);
  }

  /** Bytes of scratch this encoder holds. */
  get scratchBytes(): number {
    return this.fixedBytes + this.workBytes + this.panelBytes + this.lora.bytes + (this.ones ? 4 * this.dims.intermediate : 0);
  }

  /** x ← layer(x) for x f32[N, D] at address `x`: encoder layer `index`, with `lora`'s updates when given. */
  layer(x: number, w: VisionLayerWeights, index = 0, lora: KernelAdapter | null = null): void {
    const ex = this.kernel.exports;
    const { tokens: n, hidden: d, heads, intermediate, eps } = this.dims;
    const hd = d / heads;
    const p = `vis.l${index}`;
    ex.layerNorm(this.h, x, w.ln1.w, w.ln1.b, n, d, eps);
    this.linear(this.qkv, 3 * d, this.h, d, w.q);
    this.linear(this.qkv + 4 * d, 3 * d, this.h, d, w.k);
    this.linear(this.qkv + 8 * d, 3 * d, this.h, d, w.v);
    this.adapt(lora, `${p}.q`, this.qkv, 3 * d, this.h, d);
    this.adapt(lora, `${p}.k`, this.qkv + 4 * d, 3 * d, this.h, d);
    this.adapt(lora, `${p}.v`, this.qkv + 8 * d, 3 * d, this.h, d);
    for (let head = 0; head < heads; head++) {
      const col = 4 * head * hd;
      ex.packB(this.keys, this.qkv + 4 * d + col, 1, 3 * d, hd, n); // B[i][j] = k[j][i]
      ex.gemm(this.scores, n, this.qkv + col, 3 * d, this.keys, 0, n, n, hd, 0, this.work);
      ex.softmaxRows(this.scores, n, n, n, hd ** -0.5);
      ex.packB(this.values, this.qkv + 8 * d + col, 3 * d, 1, n, hd);
      ex.gemm(this.ctx + col, d, this.scores, n, this.values, 0, n, hd, n, 0, this.work);
    }
    this.linear(x, d, this.ctx, d, w.o, ACCUMULATE); // the residual is added in the GEMM
    this.adapt(lora, `${p}.o`, x, d, this.ctx, d);
    ex.layerNorm(this.h, x, w.ln2.w, w.ln2.b, n, d, eps);
    const fc1 = lora?.get(`${p}.fc1`);
    if (fc1) {
      // the update goes in before the activation: fc1 plain, + scale·B(A h), then gelu row by row
      this.linear(this.mid, intermediate, this.h, d, w.fc1);
      this.lora.addRows(fc1, this.mid, intermediate, this.h, d, n, this.work, this.panel);
      if (!this.ones) ((this.ones = this.kernel.heap.alloc(4 * intermediate)), this.kernel.heap.f32(this.ones, intermediate).fill(1));
      for (let r = 0; r < n; r++) ex.geluMul(this.mid + 4 * r * intermediate, this.ones, intermediate);
    } else this.linear(this.mid, intermediate, this.h, d, w.fc1, GELU);
    this.linear(x, d, this.mid, intermediate, w.fc2, ACCUMULATE);
    this.adapt(lora, `${p}.fc2`, x, d, this.mid, intermediate);
  }

  /** c[N, n] (ldc) += scale · B(A a) for a[N, k] (lda) when `lora` adapts the matrix `key`. */
  adapt(lora: KernelAdapter | null, key: string, c: number, ldc: number, a: number, lda: number): void {
    const f = lora?.get(key);
    if (f) this.lora.addRows(f, c, ldc, a, lda, this.dims.tokens, this.work, this.panel);
  }

  /** c[N, W.n] (ldc floats per row) = a[N, W.k] (lda) · Wᵀ + bias, then per `flags` (+ old c, gelu). */
  linear(c: number, ldc: number, a: number, lda: number, l: KernelLinear, flags = 0): void {
    const s = sliceOf(l.m);
    const need = gemmScratch(this.dims.tokens, s.k, s.blockSize);
    // the integer GEMM pads k to whole blocks: its scratch may need a little more than the float one's
    const heap = this.kernel.heap;
    if (need.work > this.workBytes) [this.work, this.workBytes] = [(heap.release(this.work), heap.alloc(need.work)), need.work];
    if (need.panel > this.panelBytes) [this.panel, this.panelBytes] = [(heap.release(this.panel), heap.alloc(need.panel)), need.panel];
    gemmSlice(this.kernel, this.compute, c, ldc, a, lda, s, l.bias, this.dims.tokens, flags, this.work, this.panel);
  }
}

/** The vision stages of one engine, run over an image or over rows coming from an earlier stage. */
export class VisionTower {
  private readonly encoder: VisionEncoder;
  private readonly x: number; // activations [N, D]
  private readonly patches: number; // [N, 3·p²]
  private readonly out: number; // [N, P]
  private readonly ownBytes: number;

  constructor(
    private readonly kernel: Kernel,
    private readonly config: ModelConfig,
    private readonly slices: readonly VisionSlice[],
    compute: GemmCompute = DEFAULT_GEMM,
  ) {
    const v = config.vision;
    const n = config.imageTokens;
    const pp = 3 * v.patchSize ** 2;
    this.encoder = new VisionEncoder(kernel, { tokens: n, hidden: v.hidden, heads: v.heads, intermediate: v.intermediate, eps: v.layerNormEps, extraK: pp }, compute);
    const heap = kernel.heap;
    this.x = heap.alloc(4 * n * v.hidden);
    // the unrolled patches only where the tower starts, the soft tokens only where it ends
    const first = (slices[0]?.embed ?? null) !== null;
    const last = (slices.at(-1)?.head ?? null) !== null;
    this.patches = first ? heap.alloc(4 * n * pp) : 0;
    this.out = last ? heap.alloc(4 * n * config.projectionDim) : 0;
    this.ownBytes = 4 * n * (v.hidden + (first ? pp : 0) + (last ? config.projectionDim : 0));
  }

  /** Bytes of scratch this tower holds. */
  get scratchBytes(): number {
    return this.encoder.scratchBytes + this.ownBytes;
  }

  /** pixel values float32[1, 3, S, S] → soft tokens float32[N, P] (needs every vision stage). */
  encode(pixels: Float32Array, lora: KernelAdapter | null = null): Float32Array {
    const { vision: v, imageTokens: n, projectionDim } = this.config;
    const s = v.imageSize;
    if (pixels.length !== 3 * s * s) throw new InputError("invalid_request", `pixel values must be float32[1, 3, ${s}, ${s}]`, "pixel_values");
    const first = this.slices[0];
    const last = this.slices.at(-1);
    if (!first?.embed || !last?.head || this.layerCount() !== v.layers) throw new Error("this engine does not hold the whole vision tower");
    const heap = this.kernel.heap;
    const pp = 3 * v.patchSize ** 2;
    im2col(pixels, s, v.patchSize, heap.f32(this.patches, n * pp));
    this.encoder.linear(this.x, v.hidden, this.patches, pp, first.embed.patch); // the conv as one GEMM
    this.kernel.exports.addInto(this.x, first.embed.pos, n * v.hidden);
    this.layers(lora);
    return this.project(last.head, lora).slice(0, n * projectionDim);
  }

  /**
   * This engine's vision stages over their input: pixels f32[1, 3, S, S] for the first stage, rows f32[N, D] from
   * the previous stage otherwise. Returns rows f32[N, D], or the soft tokens f32[N, P] when the last stage is here.
   */
  stage(input: Float32Array, lora: KernelAdapter | null = null): Float32Array {
    const { vision: v, imageTokens: n } = this.config;
    const first = this.slices[0];
    const last = this.slices.at(-1);
    if (!first) throw new Error("this engine holds no vision stage");
    const heap = this.kernel.heap;
    if (first.embed) {
      const s = v.imageSize;
      if (input.length !== 3 * s * s) throw new InputError("invalid_request", `pixel values must be float32[1, 3, ${s}, ${s}]`, "pixel_values");
      const pp = 3 * v.patchSize ** 2;
      im2col(input, s, v.patchSize, heap.f32(this.patches, n * pp));
      this.encoder.linear(this.x, v.hidden, this.patches, pp, first.embed.patch);
      this.kernel.exports.addInto(this.x, first.embed.pos, n * v.hidden);
    } else {
      if (input.length !== n * v.hidden) throw new Error(`vision rows must be f32[${n}, ${v.hidden}]`);
      heap.f32(this.x, n * v.hidden).set(input);
    }
    this.layers(lora);
    return last?.head ? this.project(last.head, lora) : heap.f32(this.x, n * v.hidden).slice();
  }

  private layerCount(): number {
    return this.slices.reduce((a, s) => a + s.layers.length, 0);
  }

  private layers(lora: KernelAdapter | null): void {
    for (const slice of this.slices) slice.layers.forEach((layer, i) => this.encoder.layer(this.x, layer, slice.from + i, lora));
  }

  private project(head: NonNullable<VisionSlice["head"]>, lora: KernelAdapter | null): Float32Array {
    const { vision: v, imageTokens: n, projectionDim } = this.config;
    this.kernel.exports.layerNorm(this.x, this.x, head.post.w, head.post.b, n, v.hidden, v.layerNormEps);
    this.encoder.linear(this.out, projectionDim, this.x, v.hidden, head.proj);
    this.encoder.adapt(lora, "proj", this.out, projectionDim, this.x, v.hidden);
    return this.kernel.heap.f32(this.out, n * projectionDim).slice();
  }
}

/** Patches of a [3, S, S] image as rows [N, 3·p²] in the conv kernel's (channel, y, x) order. */
export function im2col(pixels: Float32Array, s: number, p: number, out: Float32Array): void {
  const g = s / p;
  let o = 0;
  for (let gy = 0; gy < g; gy++) {
    for (let gx = 0; gx < g; gx++) {
      for (let ch = 0; ch < 3; ch++) {
        for (let y = 0; y < p; y++) {
          const row = ch * s * s + (gy * p + y) * s + gx * p;
          for (let x = 0; x < p; x++) out[o++] = pixels[row + x];
        }
      }
    }
  }
}
