/**
 * The prefill's and the vision tower's matrix products against stored weights, C[m, n] = A[m, k] · Wᵀ, in one
 * of these ways for int8/int4 weights:
 *   "int8"  — int4 weights: kernels/assembly/gemm-q4.ts, A quantised per row and 32 k to int8 (±127 levels),
 *             the codes 0..15 as the 7-bit operand of relaxed SIMD's 8-bit dot products (exact on every
 *             engine; the plain build computes the same integers), the zero point folded in as an integer;
 *             2.2–3.0× the float32 GEMM's GOP/s in workerd (the default); int8 weights: as "int16";
 *   "int8-a8" — "int8", and int8 weights × the same int8 activations too (kernels/assembly/gemm-q8.ts: the
 *             codes + 128 as the unsigned operand, whole where fullDot finds vpdpbusd, else split into 7 + 1
 *             bits; exact everywhere); not the default: it flips paligemma1-tiny int8's greedy ids;
 *   "int16" — kernels/assembly/gemm-q.ts: A quantised at run time per row and weight block to int16 (±16383
 *             levels), the codes widened to int16 per 8-row panel, exact int32 dot products per block, both
 *             scales applied in float32 (what int8 weights run by default); both products over a
 *             block-aligned slice of k round exactly as the whole one (MLP blocks, cut layers);
 *   "int7"  — kernels/assembly/gemm-q7.ts: the same with A at ±63 levels per block and relaxed SIMD's 8-bit dot
 *             products (the plain build computes the same integers with int16 dot products);
 *   "float" — kernels/assembly/gemm-w.ts: each panel dequantised to float32 (MatMulNBits accuracy_level 0).
 * float32 weights always take the float path.
 */
import { GEMM_KIND, type MatrixSlice } from "./matrix.ts";
import type { Kernel } from "./module.ts";

/** How prefill and vision GEMMs meet int8/int4 weights (see the module comment). */
export type GemmCompute = "int8" | "int8-a8" | "int16" | "int7" | "float";

/** Every {@link GemmCompute}, for option parsers. */
export const GEMM_COMPUTES: readonly GemmCompute[] = ["int8", "int8-a8", "int16", "int7", "float"];

/**
 * What models use unless told otherwise (docs/kernels.md has the measurements behind the choice): int4
 * weights meet int8 activations (gemm-q4.ts), int8 weights int16 ones (gemm-q.ts).
 */
export const DEFAULT_GEMM: GemmCompute = "int8";

/** Scratch bytes one product needs: A repacked (`work`) and one weight panel (`panel`), for any compute. */
export function gemmScratch(m: number, k: number, blockSize: number): { work: number; panel: number } {
  const bs = Math.max(1, blockSize);
  const blocks = Math.ceil(k / bs);
  const kp = blocks * bs;
  const m6 = Math.ceil(m / 6) * 6;
  return { work: Math.max(4 * m * k, 2 * m6 * kp + 4 * m6 * blocks, m6 * kp + (3 * m6 * kp) / 8), panel: Math.max(32 * k, 16 * kp + 64 * blocks, 17 * kp) };
}

/** True when `compute` sends this slice to the integer GEMM. */
export function usesIntegerGemm(compute: GemmCompute, s: MatrixSlice): boolean {
  return compute !== "float" && s.kind !== GEMM_KIND.f32 && s.blockSize <= MAX_INT_BLOCK;
}

/** Largest block the integer GEMM's int32 block sums hold exactly (bs · 16383 · 128 < 2³¹). */
export const MAX_INT_BLOCK = 512;

/**
 * c[m, s.n] (ldc floats per row) = act(a[m, s.k] (lda) · sᵀ + bias) (+ old c), flags as gemmW's; work and
 * panel at least {@link gemmScratch}(m, s.k, s.blockSize).
 */
export function gemmSlice(kernel: Kernel, compute: GemmCompute, c: number, ldc: number, a: number, lda: number, s: MatrixSlice, bias: number, m: number, flags: number, work: number, panel: number): void {
  const run = kernel.exports[gemmKernel(compute, s)];
  run(c, ldc, a, lda, s.w, s.scales, s.kind, s.blockSize, bias, m, s.n, s.k, flags, work, panel, s.kRow);
}

/** The kernel export that multiplies by slice `s` under `compute` (see the module comment). */
function gemmKernel(compute: GemmCompute, s: MatrixSlice): "gemmW" | "gemmQ7" | "gemmQ4A8" | "gemmQ8A8" | "gemmQ" {
  if (!usesIntegerGemm(compute, s)) return "gemmW";
  if (compute === "int7") return "gemmQ7";
  // int8 activations are quantised in chunks of 32 k: other block sizes keep int16 ones.
  const a8 = (compute === "int8" || compute === "int8-a8") && s.blockSize % 32 === 0;
  if (a8 && s.kind === GEMM_KIND.q4) return "gemmQ4A8";
  if (a8 && compute === "int8-a8" && s.kind === GEMM_KIND.q8) return "gemmQ8A8";
  return "gemmQ";
}
