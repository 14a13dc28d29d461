/**
 * Weight formats shared by the converter (which writes them) and the runtime (which reads token-embedding
 * rows from the tied head). Matrix weights of dtype int8/int4 use onnxruntime's MatMulNBits layout:
 * `B uint8[N, blocks, blockSize·bits/8]` (an [N, K] matrix quantised along K, low nibble first for 4 bits),
 * `scales float32[N·blocks]`, no zero-point input, so the zero point is 2^(bits-1).
 */
import { fromHalf } from "./half.ts";

export type WeightDtype = "fp32" | "fp16" | "int8" | "int4";
export const WEIGHT_DTYPES: readonly WeightDtype[] = ["fp32", "fp16", "int8", "int4"];

export function bitsOf(dtype: "int8" | "int4"): 8 | 4 {
  return dtype === "int8" ? 8 : 4;
}

export function isQuantized(dtype: WeightDtype): dtype is "int8" | "int4" {
  return dtype === "int8" || dtype === "int4";
}

/** Layout of a quantised [N, K] matrix. */
export interface NBitsLayout {
  readonly n: number;
  readonly k: number;
  readonly bits: 8 | 4;
  readonly blockSize: number;
}

export function blocksPerRow(l: NBitsLayout): number {
  return Math.ceil(l.k / l.blockSize);
}

export function blobBytes(l: NBitsLayout): number {
  return (l.blockSize * l.bits) / 8;
}

/** Dequantises row `row` of an nbits matrix into `out[0..k)`. */
export function dequantRow(l: NBitsLayout, packed: Uint8Array, scales: Float32Array, row: number, out: Float32Array): void {
  const blocks = blocksPerRow(l);
  const blob = blobBytes(l);
  const zero = 1 << (l.bits - 1);
  for (let b = 0; b < blocks; b++) {
    const scale = scales[row * blocks + b];
    const base = (row * blocks + b) * blob;
    const k0 = b * l.blockSize;
    const k1 = Math.min(l.k, k0 + l.blockSize);
    for (let k = k0; k < k1; k++) {
      const j = k - k0;
      const q = l.bits === 8 ? packed[base + j] : (packed[base + (j >> 1)] >> ((j & 1) * 4)) & 0xf;
      out[k] = Math.fround((q - zero) * scale);
    }
  }
}

/** Reads column `col` of a row-major [rows, cols] float32 or float16 matrix into `out[0..rows)`. */
export function readColumn(dtype: "fp32" | "fp16", bytes: Uint8Array, rows: number, cols: number, col: number, out: Float32Array): void {
  if (dtype === "fp32") {
    const m = new Float32Array(bytes.buffer, bytes.byteOffset, rows * cols);
    for (let r = 0; r < rows; r++) out[r] = m[r * cols + col];
  } else {
    const m = new Uint16Array(bytes.buffer, bytes.byteOffset, rows * cols);
    for (let r = 0; r < rows; r++) out[r] = fromHalf(m[r * cols + col]);
  }
}
