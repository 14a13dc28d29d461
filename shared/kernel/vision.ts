/**
 * The kernel vision path: the whole SigLIP tower (patch embedding → encoder layers → post-norm → projector)
 * over all image tokens at once, as float32 GEMMs in the kernel module (kernels/assembly/gemm.ts: 6 × 8
 * register tiles, fused multiply-adds with relaxed SIMD). onnxruntime-web's WASM GEMM has no fused
 * multiply-add, so this runs the same math about twice as fast inside workerd. Weights of any dtype are
 * widened (fp16) or dequantised (int8/int4) to float32 once at load, as onnxruntime's accuracy_level 0 does.
 *
 *   const vision = await KernelVision.load(manifest, readFile);
 *   const soft = vision.encode(pixels);   // float32[N, P], the projector output (manifest softTokens)
 */
import { InputError } from "../errors.ts";
import type { ModelConfig } from "../model/config.ts";
import { stagesOf, type Manifest } from "../model/manifest.ts";
import { configuredKernel, instantiateKernel, type Kernel, type KernelModule } from "./module.ts";
import { loadVisionStages, packedBytes, type PackedMatrix, type VisionLayerWeights, type VisionWeights, type WeightFileReader } from "./weights.ts";

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
  private readonly work: number; // A repacked by gemm: [N, widest k]
  /** Bytes of scratch this encoder holds. */
  readonly scratchBytes: number;

  constructor(
    private readonly kernel: Kernel,
    readonly dims: EncoderDims,
  ) {
    const { tokens: n, hidden: d, heads, intermediate } = dims;
    const hd = d / heads;
    const pad = (x: number) => Math.ceil(x / 8) * 8;
    const sizes = [n * d, 3 * n * d, n * d, n * n, hd * pad(n), n * pad(hd), n * intermediate, n * Math.max(d, intermediate, n, dims.extraK)].map((x) => 4 * x);
    [this.h, this.qkv, this.ctx, this.scores, this.keys, this.values, this.mid, this.work] = sizes.map((b) => kernel.heap.alloc(b));
    this.scratchBytes = sizes.reduce((a, b) => a + b, 0);
  }

  /** x ← layer(x) for x f32[N, D] at address `x`. */
  layer(x: number, w: VisionLayerWeights): void {
    const ex = this.kernel.exports;
    const { tokens: n, hidden: d, heads, intermediate, eps } = this.dims;
    const hd = d / heads;
    ex.layerNorm(this.h, x, w.ln1.w, w.ln1.b, n, d, eps);
    this.linear(this.qkv, 3 * d, this.h, d, w.qkv);
    for (let head = 0; head < heads; head++) {
      const col = 4 * head * hd;
      ex.packB(this.keys, this.qkv + 4 * d + col, 1, 3 * d, hd, n); // B[i][j] = k[j][i]
      ex.gemm(this.scores, n, this.qkv + col, 3 * d, this.keys, 0, n, n, hd, 0, this.work);
      ex.softmaxRows(this.scores, n, n, n, hd ** -0.5);
      ex.packB(this.values, this.qkv + 8 * d + col, 3 * d, 1, n, hd);
      ex.gemm(this.ctx + col, d, this.scores, n, this.values, 0, n, hd, n, 0, this.work);
    }
    this.linear(x, d, this.ctx, d, w.o, ACCUMULATE); // the residual is added in the GEMM
    ex.layerNorm(this.h, x, w.ln2.w, w.ln2.b, n, d, eps);
    this.linear(this.mid, intermediate, this.h, d, w.fc1, GELU);
    this.linear(x, d, this.mid, intermediate, w.fc2, ACCUMULATE);
  }

  /** c[N, m.n] (ldc floats per row) = a[N, m.k] (lda) · m + bias, then per `flags` (+ old c, gelu). */
  linear(c: number, ldc: number, a: number, lda: number, m: PackedMatrix, flags = 0): void {
    this.kernel.exports.gemm(c, ldc, a, lda, m.b, m.bias, this.dims.tokens, m.n, m.k, flags, this.work);
  }
}

export interface KernelVisionOptions {
  /** The compiled kernel (default: the one initKernel set up). */
  readonly kernel?: KernelModule;
}

/** The vision tower in one kernel instance: pixels → soft tokens. */
export class KernelVision {
  private constructor(
    readonly config: ModelConfig,
    private readonly kernel: Kernel,
    private readonly weights: VisionWeights,
    private readonly encoder: VisionEncoder,
    private readonly x: number, // activations [N, D]
    private readonly patches: number, // [N, 3·p²]
    private readonly out: number, // [N, P]
  ) {}

  /** Copies every vision stage's weights into a fresh kernel instance. */
  static async load(manifest: Manifest, readFile: WeightFileReader, opts: KernelVisionOptions = {}): Promise<KernelVision> {
    const kernel = await instantiateKernel(opts.kernel ?? (await configuredKernel()));
    const stages = stagesOf(manifest, "vision");
    const files: Uint8Array[] = [];
    for (const s of stages) files.push(await readFile(s.weights));
    const weights = loadVisionStages(manifest, stages, files, kernel.heap);
    const c = manifest.config;
    const v = c.vision;
    const n = c.imageTokens;
    const encoder = new VisionEncoder(kernel, { tokens: n, hidden: v.hidden, heads: v.heads, intermediate: v.intermediate, eps: v.layerNormEps, extraK: 3 * v.patchSize ** 2 });
    const heap = kernel.heap;
    return new KernelVision(c, kernel, weights, encoder, heap.alloc(4 * n * v.hidden), heap.alloc(4 * n * 3 * v.patchSize ** 2), heap.alloc(4 * n * c.projectionDim));
  }

  /** pixel values float32[1, 3, S, S] → soft tokens float32[N, P] (a fresh array). */
  encode(pixels: Float32Array): Float32Array {
    const { vision: v, imageTokens: n, projectionDim } = this.config;
    const s = v.imageSize;
    if (pixels.length !== 3 * s * s) throw new InputError("invalid_request", `pixel values must be float32[1, 3, ${s}, ${s}]`, "pixel_values");
    const ex = this.kernel.exports;
    const heap = this.kernel.heap;
    const w = this.weights;
    const d = v.hidden;
    const pp = 3 * v.patchSize ** 2;
    im2col(pixels, s, v.patchSize, heap.f32(this.patches, n * pp));
    this.encoder.linear(this.x, d, this.patches, pp, w.patch); // the conv as one GEMM
    ex.addInto(this.x, w.pos, n * d);
    for (const layer of w.layers) this.encoder.layer(this.x, layer);
    ex.layerNorm(this.x, this.x, w.post.w, w.post.b, n, d, v.layerNormEps);
    this.encoder.linear(this.out, projectionDim, this.x, d, w.proj);
    return heap.f32(this.out, n * projectionDim).slice();
  }

  /** Kernel memory: weights, scratch, and the linear memory's size. */
  memory(): { flavor: string; weightBytes: number; scratchBytes: number; memoryBytes: number } {
    const w = this.weights;
    const mats = [w.patch, w.proj, ...w.layers.flatMap((l) => [l.qkv, l.o, l.fc1, l.fc2])];
    const weightBytes = mats.reduce((a, m) => a + packedBytes(m), 0);
    return { flavor: this.kernel.flavor, weightBytes, scratchBytes: this.encoder.scratchBytes, memoryBytes: this.kernel.heap.stats().memoryBytes };
  }
}

/** Patches of a [3, S, S] image as rows [N, 3·p²] in the conv kernel's (channel, y, x) order. */
function im2col(pixels: Float32Array, s: number, p: number, out: Float32Array): void {
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
