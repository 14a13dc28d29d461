/**
 * One weight matrix applied to several prepared vectors (the sessions of a batched decode step) in one pass over
 * its weights: W is walked in tiles of rows small enough to stay in cache (~128 KB), and each tile is applied to
 * every vector before the next tile is read. Decoding is memory-bound, so B vectors cost one read of W from
 * memory plus B passes over cached tiles. Each output value is computed by the same kernel code as a single
 * {@link Linear.apply} (a row's dot product does not depend on the rows around it), so results are bit-identical.
 */
import type { Linear } from "./linear.ts";
import type { KernelMatrix } from "./matrix.ts";

/** Bytes of weights per tile. */
const TILE_BYTES = 128 * 1024;

/** Bytes one row of `m` occupies (codes and scales). */
function rowBytes(m: KernelMatrix): number {
  if (m.kind === "f32") return 4 * m.k;
  const blocks = Math.ceil(m.k / m.blockSize);
  return blocks * (m.kind === "q8" ? m.blockSize : m.blockSize / 2) + 4 * blocks;
}

/** ys[b] f32[n] = W · x_b, x_b the vector `linears[b]` has prepared. */
export function applyBatch(linears: readonly Linear[], m: KernelMatrix, ys: readonly number[]): void {
  if (linears.length === 1) return linears[0].apply(m, ys[0]);
  const tile = Math.max(8, Math.floor(TILE_BYTES / rowBytes(m)) & ~1);
  for (let r0 = 0; r0 < m.n; r0 += tile) {
    const n = Math.min(tile, m.n - r0);
    for (let b = 0; b < linears.length; b++) linears[b].applyRows(m, r0, n, ys[b] + 4 * r0);
  }
}
