/**
 * Weight matrices as the kernel holds them: W[n, k], one output per row (what a GEMV reads as dot products and
 * gemmW packs panel by panel), in the stored format. int8/int4 keep onnxruntime's MatMulNBits layout
 * [n, blocks, blockBytes] with f32 scales [n · blocks] (int8 codes made signed, see {@link toKernelCodes});
 * fp32 files hold the transposed [k, n] matrix (ONNX MatMul's layout), transposed once while it streams in;
 * fp16 is widened to fp32 (the kernel has no fp16 arithmetic). Addresses are byte offsets in kernel memory.
 */

/** A weight matrix W[n, k] in kernel memory. */
export type KernelMatrix =
  | { readonly kind: "f32"; readonly n: number; readonly k: number; readonly w: number }
  | { readonly kind: "q4" | "q8"; readonly n: number; readonly k: number; readonly blockSize: number; readonly codes: number; readonly scales: number };

/** A linear layer: W and its bias f32[⌈n / 8⌉ · 8] (zero-padded, as gemmW reads it; 0 = none). */
export interface KernelLinear {
  readonly m: KernelMatrix;
  readonly bias: number;
}

/** gemmW's weight kind codes (kernels/assembly/gemm-w.ts). */
export const GEMM_KIND = { f32: 0, q8: 1, q4: 2 } as const;

/** What gemmW reads of a matrix: rows [r0, r0 + n) and columns [c0, c0 + k) of W, as addresses and strides. */
export interface MatrixSlice {
  readonly kind: number; // GEMM_KIND
  readonly w: number; // first value (f32) or code byte of the slice
  readonly scales: number; // first scale (int8/int4), 0 for f32
  readonly blockSize: number; // 1 for f32
  readonly n: number;
  readonly k: number;
  readonly kRow: number; // stored row length (W.k)
}

/** Rows [r0, r0 + n) × columns [c0, c0 + k) of `m` (c0 on a block boundary for int8/int4). */
export function sliceOf(m: KernelMatrix, r0 = 0, n = m.n, c0 = 0, k = m.k): MatrixSlice {
  if (r0 < 0 || n < 0 || r0 + n > m.n || c0 < 0 || k < 0 || c0 + k > m.k) throw new RangeError(`slice [${r0}+${n}, ${c0}+${k}] of a [${m.n}, ${m.k}] matrix`);
  if (m.kind === "f32") return { kind: GEMM_KIND.f32, w: m.w + 4 * (r0 * m.k + c0), scales: 0, blockSize: 1, n, k, kRow: m.k };
  if (c0 % m.blockSize !== 0) throw new RangeError(`column ${c0} is not on a block boundary (${m.blockSize})`);
  const blocks = Math.ceil(m.k / m.blockSize);
  const blob = m.kind === "q8" ? m.blockSize : m.blockSize / 2;
  const b0 = c0 / m.blockSize;
  return { kind: GEMM_KIND[m.kind], w: m.codes + (r0 * blocks + b0) * blob, scales: m.scales + 4 * (r0 * blocks + b0), blockSize: m.blockSize, n, k, kRow: m.k };
}

/**
 * Turns MatMulNBits codes into the kernel's, in place: int4 unchanged (unsigned nibbles, zero point 8); int8
 * stored signed (code − 128, i.e. the top bit flipped), the operand the 8-bit dot products take as it is.
 */
export function toKernelCodes(bits: 4 | 8, codes: Uint8Array): void {
  if (bits === 4) return;
  for (let i = 0; i < codes.length; i++) codes[i] ^= 0x80;
}

/** Bytes a matrix occupies in kernel memory. */
export function matrixBytes(m: KernelMatrix): number {
  if (m.kind === "f32") return 4 * m.n * m.k;
  const blocks = Math.ceil(m.k / m.blockSize);
  return m.n * blocks * ((m.blockSize * (m.kind === "q4" ? 4 : 8)) / 8) + 4 * m.n * blocks;
}

/** Writes row `row` of W (dequantised as MatMulNBits does) into `out` f32[k], reading kernel memory. */
export function readRow(memory: ArrayBuffer, m: KernelMatrix, row: number, out: Float32Array): void {
  if (m.kind === "f32") {
    out.set(new Float32Array(memory, m.w + 4 * row * m.k, m.k));
    return;
  }
  const blocks = Math.ceil(m.k / m.blockSize);
  const blob = m.kind === "q8" ? m.blockSize : m.blockSize / 2;
  const scales = new Float32Array(memory, m.scales + 4 * row * blocks, blocks);
  const codes = new Uint8Array(memory, m.codes + row * blocks * blob, blocks * blob);
  for (let b = 0; b < blocks; b++) {
    const s = scales[b];
    const k0 = b * m.blockSize;
    const k1 = Math.min(m.k, k0 + m.blockSize);
    for (let k = k0; k < k1; k++) {
      const j = k - k0;
      const c = m.kind === "q8" ? ((codes[b * blob + j] ^ 0x80) - 128) : ((codes[b * blob + (j >> 1)] >> ((j & 1) * 4)) & 15) - 8;
      out[k] = Math.fround(c * s);
    }
  }
}
