/**
 * Block-wise symmetric quantisation of an [N, K] matrix into onnxruntime's MatMulNBits layout
 * (see shared/model/weights.ts): per block of `blockSize` values along K, scale = absmax / qmax and
 * q = round(w / scale) + 2^(bits-1), clamped to the unsigned range.
 */
import { blobBytes, blocksPerRow, type NBitsLayout } from "../shared/model/weights.ts";

export interface Quantized {
  readonly packed: Uint8Array; // [N, blocks, blob]
  readonly scales: Float32Array; // [N * blocks]
}

export function quantizeNBits(w: Float32Array, l: NBitsLayout): Quantized {
  const blocks = blocksPerRow(l);
  const blob = blobBytes(l);
  const zero = 1 << (l.bits - 1);
  const qmax = zero - 1; // 127 or 7: symmetric range, the code 0 stays unused
  const packed = new Uint8Array(l.n * blocks * blob);
  const scales = new Float32Array(l.n * blocks);
  for (let n = 0; n < l.n; n++) {
    for (let b = 0; b < blocks; b++) {
      const k0 = b * l.blockSize;
      const k1 = Math.min(l.k, k0 + l.blockSize);
      let absmax = 0;
      for (let k = k0; k < k1; k++) absmax = Math.max(absmax, Math.abs(w[n * l.k + k]));
      const scale = Math.fround(absmax / qmax);
      scales[n * blocks + b] = scale;
      const base = (n * blocks + b) * blob;
      for (let k = k0; k < l.blockSize + k0; k++) {
        const v = k < k1 && scale > 0 ? Math.round(w[n * l.k + k] / scale) : 0;
        const q = Math.max(-qmax, Math.min(qmax, v)) + zero;
        const j = k - k0;
        if (l.bits === 8) packed[base + j] = q;
        else packed[base + (j >> 1)] |= q << ((j & 1) * 4);
      }
    }
  }
  return { packed, scales };
}
