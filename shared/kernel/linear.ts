/**
 * Matrix-vector products over kernel-resident weights, y[n] = W[n, k] · x[k], with the activation
 * preparation each weight kind needs done once per input vector and shared by every matrix that reads it
 * (q/k/v read the same normed row, gate/up another).
 *
 * Quantised weights run in one of two compute modes:
 *   "int8"  — x quantised per block to int8 (onnxruntime's accuracy_level 4): integer dot products, fastest.
 *   "float" — x stays float32 and each code is dequantised (accuracy_level 0, what the converter's graphs
 *             ask for by default): no activation rounding, 2–5× slower.
 */
import type { Kernel } from "./module.ts";
import type { KernelMatrix } from "./matrix.ts";

/** How quantised weights meet the activations (see the module comment). */
export type QuantCompute = "int8" | "float";

/** The weight kinds of one model: every matrix of a converted model has the same dtype and block size. */
export interface WeightKind {
  readonly kind: KernelMatrix["kind"];
  readonly blockSize: number;
}

/**
 * Applies matrices to one prepared input vector at a time: `prepare(x, k)` then any number of
 * `apply(W, y)` with W[n, k]. Holds the preparation scratch (activations of up to `maxK` values).
 */
export class Linear {
  private readonly xq: number; // int8 / int16 activation codes (≤ 2 bytes per value)
  private readonly sx: number; // f32[blocks] activation scales
  private readonly corr: number; // i32[blocks] zero-point corrections
  private readonly xf: number; // f32 activations, padded (and permuted for int4)
  private x = -1; // the prepared vector (fp32 weights read it directly)
  private k = 0;
  /** Bytes of scratch this object holds in kernel memory. */
  readonly scratchBytes: number;

  constructor(
    private readonly kernel: Kernel,
    private readonly weights: WeightKind,
    readonly compute: QuantCompute,
    maxK: number,
  ) {
    const bs = weights.blockSize;
    const padded = Math.ceil(maxK / bs) * bs;
    const heap = kernel.heap;
    this.xq = heap.alloc(2 * padded);
    this.sx = heap.alloc((4 * padded) / bs);
    this.corr = heap.alloc((4 * padded) / bs);
    this.xf = heap.alloc(4 * padded);
    this.scratchBytes = 6 * padded + (8 * padded) / bs;
  }

  /** Prepares x f32[k] (at address `x`) for the following `apply` calls. */
  prepare(x: number, k: number): void {
    const { kind, blockSize } = this.weights;
    const ex = this.kernel.exports;
    this.x = x;
    this.k = k;
    if (kind === "f32") return;
    const bits = kind === "q4" ? 4 : 8;
    if (this.compute === "int8") ex.quantizeActivations(this.xq, this.sx, this.corr, x, k, blockSize, bits);
    else ex.permuteActivations(this.xf, x, k, blockSize, bits);
  }

  /**
   * The prepared vector's operands as the kernels read them (addresses in kernel memory): `x` the vector itself
   * (fp32 weights), `xq`/`sx`/`corr` its int8-compute codes, `xf` its float-compute layout; `k` its length.
   */
  get operands(): { readonly x: number; readonly xq: number; readonly sx: number; readonly corr: number; readonly xf: number; readonly k: number } {
    return { x: this.x, xq: this.xq, sx: this.sx, corr: this.corr, xf: this.xf, k: this.k };
  }

  /**
   * Rows [r0, r0 + n) of W · x into y f32[n] (the same per-row arithmetic as {@link apply}: each row's dot
   * product is computed by the same kernel code whatever rows surround it). Batched steps use it to apply one
   * cache-sized tile of W to every session's vector before moving on (linear-batch.ts).
   */
  applyRows(m: KernelMatrix, r0: number, n: number, y: number): void {
    if (m.kind === "f32") return this.apply({ ...m, n, w: m.w + 4 * r0 * m.k }, y);
    const blocks = Math.ceil(m.k / m.blockSize);
    const blob = m.kind === "q8" ? m.blockSize : m.blockSize / 2;
    this.apply({ ...m, n, codes: m.codes + r0 * blocks * blob, scales: m.scales + 4 * r0 * blocks }, y);
  }

  /** y f32[n] = W · x for the prepared x (W must be [n, k] with the prepared k). */
  apply(m: KernelMatrix, y: number): void {
    if (m.k !== this.k || m.kind !== this.weights.kind) throw new Error(`linear: a ${m.kind}[${m.n}, ${m.k}] matrix applied to a ${this.weights.kind} vector of ${this.k}`);
    const ex = this.kernel.exports;
    if (m.kind === "f32") ex.gemvF32(y, m.w, this.x, m.n, m.k);
    else if (this.compute === "int8") (m.kind === "q4" ? ex.gemvQ4 : ex.gemvQ8)(y, m.codes, m.scales, this.xq, this.sx, this.corr, m.n, m.k, m.blockSize);
    else (m.kind === "q4" ? ex.gemvQ4F : ex.gemvQ8F)(y, m.codes, m.scales, this.xf, m.n, m.k, m.blockSize);
  }
}
