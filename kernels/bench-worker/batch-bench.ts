/**
 * POST /gemv-batch: the seven GEMVs of one decoder layer (q, k, v, o, gate, up, down on synthetic weights of the
 * request's shape) for B sessions at once, as a batched decode step applies them, timed two ways in the same
 * run, rounds interleaved: "before", W walked in cache-sized row tiles with the single GEMV per session
 * (applyBatchTiled), and "after", the kernel's multi-vector GEMV (LinearBatch: each row read and dequantised
 * once for all B). Norms, RoPE and attention (per session either way) are not included.
 */
import type { TextConfig } from "../../shared/model/config.ts";
import { Linear, type QuantCompute } from "../../shared/kernel/linear.ts";
import { applyBatchTiled, LinearBatch } from "../../shared/kernel/linear-batch.ts";
import { instantiateKernel, type KernelModule } from "../../shared/kernel/module.ts";
import { matrix } from "./layer-bench.ts";

export interface GemvBatchRequest {
  readonly text: TextConfig;
  readonly dtype: "fp32" | "int8" | "int4";
  readonly compute: QuantCompute;
  readonly blockSize: number;
  readonly batches: readonly number[];
  /** Minimum timed ms per round, and rounds (the median is reported). */
  readonly roundMs: number;
  readonly rounds: number;
}

export interface GemvBatchRow {
  readonly batch: number;
  /** Median ms of one layer's GEMVs for `batch` sessions. */
  readonly beforeMs: number;
  readonly afterMs: number;
}

export async function gemvBatchBench(km: KernelModule, req: GemvBatchRequest, now: () => number): Promise<{ flavor: string; rows: GemvBatchRow[] }> {
  const kernel = await instantiateKernel(km);
  const t = req.text;
  const h = t.hidden;
  const f = t.intermediate;
  const mats = [[t.heads * t.headDim, h], [t.kvHeads * t.headDim, h], [t.kvHeads * t.headDim, h], [h, t.heads * t.headDim], [f, h], [f, h], [h, f]] as const;
  const ms = mats.map(([n, k], i) => matrix(kernel.heap, req, n, k, 17 + i));
  const most = Math.max(...req.batches);
  const kind = { kind: ms[0].kind, blockSize: req.blockSize };
  const lins = new Map<number, Linear[]>(); // per input width, one prepared vector per session
  for (const k of new Set(mats.map(([, k]) => k))) {
    lins.set(k, Array.from({ length: most }, (_, b) => {
      const x = kernel.heap.alloc(4 * k);
      kernel.heap.f32(x, k).forEach((_, i, a) => (a[i] = Math.sin(b + i * 0.37) * 0.5));
      const l = new Linear(kernel, kind, req.compute, k);
      l.prepare(x, k);
      return l;
    }));
  }
  const ys = ms.map((m) => Array.from({ length: most }, () => kernel.heap.alloc(4 * m.n)));
  const batch = new LinearBatch(kernel);
  const pass = (B: number, after: boolean) => {
    ms.forEach((m, i) => {
      const l = lins.get(m.k)!.slice(0, B);
      if (after) batch.apply(l, m, ys[i].slice(0, B));
      else applyBatchTiled(l, m, ys[i].slice(0, B));
    });
  };
  const variants = req.batches.flatMap((B) => [[B, false], [B, true]] as const);
  const rounds = variants.map(() => [] as number[]);
  for (const [B, after] of variants) pass(B, after); // warm-up: page faults, V8's tier-up
  for (let r = 0; r < req.rounds; r++) {
    variants.forEach(([B, after], v) => {
      let n = 0;
      const t0 = now();
      let t1 = t0;
      do {
        pass(B, after);
        n++;
        t1 = now();
      } while (t1 - t0 < req.roundMs);
      rounds[v].push((t1 - t0) / n);
    });
  }
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
  const rows = req.batches.map((B, i) => ({ batch: B, beforeMs: median(rounds[2 * i]), afterMs: median(rounds[2 * i + 1]) }));
  return { flavor: kernel.flavor, rows };
}
