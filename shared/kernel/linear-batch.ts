/**
 * One weight matrix applied to several prepared vectors (the sessions of a batched decode step) in one pass over
 * its weights.
 *
 * {@link LinearBatch} (the default) calls the kernel's multi-vector GEMVs (kernels/assembly/gemv-batch*.ts): W is
 * walked once for up to {@link MAX_VECTORS} vectors, each chunk of weights loaded and (int8/int4) split or
 * dequantised once per pair of vectors, in registers; each output keeps the single GEMV's summation order, so results are bit-identical
 * to {@link Linear.apply} per vector. {@link applyBatchTiled} is the path before it (kept for the benchmark's
 * before/after): W walked in cache-sized tiles of rows, each tile applied to every vector by the single GEMV.
 */
import type { Linear } from "./linear.ts";
import type { KernelMatrix } from "./matrix.ts";
import type { Kernel } from "./module.ts";

/** Vectors per kernel call (the kernel takes any number; more calls past this re-read W from cache, not DRAM). */
export const MAX_VECTORS = 16;

/** Bytes of weights per tile (applyBatchTiled). */
const TILE_BYTES = 128 * 1024;

/** Bytes one row of `m` occupies (codes and scales). */
function rowBytes(m: KernelMatrix): number {
  if (m.kind === "f32") return 4 * m.k;
  const blocks = Math.ceil(m.k / m.blockSize);
  return blocks * (m.kind === "q8" ? m.blockSize : m.blockSize / 2) + 4 * blocks;
}

/** ys[b] f32[n] = W · x_b, x_b the vector `linears[b]` has prepared: tiles of W, the single GEMV per vector. */
export function applyBatchTiled(linears: readonly Linear[], m: KernelMatrix, ys: readonly number[]): void {
  if (linears.length === 1) return linears[0].apply(m, ys[0]);
  const tile = Math.max(8, Math.floor(TILE_BYTES / rowBytes(m)) & ~1);
  for (let r0 = 0; r0 < m.n; r0 += tile) {
    const n = Math.min(tile, m.n - r0);
    for (let b = 0; b < linears.length; b++) linears[b].applyRows(m, r0, n, ys[b] + 4 * r0);
  }
}

/**
 * Whether applying a matrix to several vectors at once shares work between them (the multi-vector GEMVs) or
 * runs each vector's single GEMV over tiles of W ({@link LinearBatch.apply}'s rule): with relaxed SIMD's int8
 * activations a batch costs about what its vectors cost one by one.
 */
export function batchSharesWork(compute: Linear["compute"], flavor: Kernel["flavor"]): boolean {
  return !(compute === "int8" && flavor === "relaxed");
}

/** The multi-vector GEMV's scratch: the table of vectors a kernel call reads. */
export class LinearBatch {
  private readonly tab: number; // u32[MAX_VECTORS · 4]: y, then the vector's operands
  /** Bytes of scratch this object holds in kernel memory. */
  readonly scratchBytes = 16 * MAX_VECTORS;

  constructor(private readonly kernel: Kernel) {
    this.tab = kernel.heap.alloc(16 * MAX_VECTORS);
  }

  /** ys[b] f32[n] = W · x_b, x_b the vector `linears[b]` has prepared (bit-identical to linears[b].apply). */
  apply(linears: readonly Linear[], m: KernelMatrix, ys: readonly number[]): void {
    if (linears.length === 1) return linears[0].apply(m, ys[0]);
    // With relaxed SIMD's int8 activations the cost per vector is the 8-bit dot products themselves: int8 codes
    // need no unpacking, and int4's unpacking shared by pairs did not pay for the paired kernel's per-chunk
    // l − 128·g (measured in workerd: int8 0.86–0.94×, int4 0.71–0.97× the tiled single GEMVs), so both keep those.
    if (!batchSharesWork(linears[0].compute, this.kernel.flavor)) return applyBatchTiled(linears, m, ys);
    for (let b0 = 0; b0 < linears.length; b0 += MAX_VECTORS) this.call(linears.slice(b0, b0 + MAX_VECTORS), m, ys.slice(b0, b0 + MAX_VECTORS));
  }

  private call(linears: readonly Linear[], m: KernelMatrix, ys: readonly number[]): void {
    const ex = this.kernel.exports;
    const tab = new Uint32Array(this.kernel.heap.memory.buffer, this.tab, 4 * linears.length);
    const float = linears[0].compute === "float";
    linears.forEach((l, b) => {
      const o = l.operands;
      if (o.k !== m.k) throw new Error(`linear batch: a ${m.kind}[${m.n}, ${m.k}] matrix applied to a vector of ${o.k}`);
      if (m.kind === "f32") tab.set([ys[b], o.x, 0, 0], 4 * b);
      else if (float) tab.set([ys[b], o.xf, 0, 0], 4 * b);
      else tab.set([ys[b], o.xq, o.sx, o.corr], 4 * b);
    });
    const nv = linears.length;
    if (m.kind === "f32") ex.gemvF32N(this.tab, m.w, m.n, m.k, nv);
    else if (float) (m.kind === "q4" ? ex.gemvQ4FN : ex.gemvQ8FN)(this.tab, m.codes, m.scales, m.n, m.k, m.blockSize, nv);
    else (m.kind === "q4" ? ex.gemvQ4N : ex.gemvQ8N)(this.tab, m.codes, m.scales, m.n, m.k, m.blockSize, nv);
  }
}
