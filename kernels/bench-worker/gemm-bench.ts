/**
 * GOP/s of the kernel's GEMMs on given layer shapes, in one instance and one run: the float32 GEMM (gemm.ts over
 * B packed at load, what fp32 models run), the integer GEMMs the models run by default (gemm-q.ts with int16
 * activations over int8 MatMulNBits blocks, "int8"; gemm-q4.ts with int8 activations over int4 ones, "int4",
 * in the form wideDot picks, and "int4-pairs" in its int16-pairs form), gemm-q8.ts's int8 weights × int8
 * activations ("int8-a8", the "int8-a8" option: in the form fullDot picks; "int8-split" its 7 + 1-bit split
 * form forced, the same integers: checked here, the run throws where the two differ),
 * gemm-q.ts over int4 blocks too ("int4-i16", the int4 default before gemm-q4.ts),
 * gemm-q7.ts's 7-bit activations and 8-bit dot products ("-i7"), and the float GEMM over int8 blocks
 * dequantised per panel (gemm-w.ts, the "float" option). Synthetic values:
 * the speed does not depend on them. Runs in Node and inside workerd (kernels/bench-worker/), so it imports
 * nothing from Node.
 */
import { gemmScratch } from "../../shared/kernel/gemm.ts";
import type { Kernel } from "../../shared/kernel/module.ts";

/** One product C[m, n] = A[m, k] · Wᵀ, named after the layer matrix it stands for. */
export interface GemmShape {
  readonly name: string;
  readonly m: number;
  readonly n: number;
  readonly k: number;
}

/** The product variants timed: label (a bench dtype) → what runs. */
export const GEMM_VARIANTS = ["fp32-kernel", "int8-kernel", "int4-kernel", "int4-pairs-kernel", "int4-i16-kernel", "int8-i7-kernel", "int4-i7-kernel", "int8-float-kernel", "int8-a8-kernel", "int8-split-kernel"] as const;
export type GemmVariant = (typeof GEMM_VARIANTS)[number];

/** One timed product: median ms of one call and 2·m·n·k / time in 10⁹ operations per second. */
export interface GemmBenchRow {
  readonly name: string;
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly variant: GemmVariant;
  readonly ms: number;
  readonly gops: number;
}

function fillRandom(kernel: Kernel, at: number, bytes: number, seed: number): void {
  const words = new Uint32Array(kernel.heap.memory.buffer, at, bytes >> 2);
  let x = seed | 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
}

function fillFloats(kernel: Kernel, at: number, n: number, seed: number, scale: number): void {
  fillRandom(kernel, at, 4 * n, seed);
  const u = new Uint32Array(kernel.heap.memory.buffer, at, n);
  const f = new Float32Array(kernel.heap.memory.buffer, at, n);
  for (let i = 0; i < n; i++) f[i] = scale * (u[i] / 2 ** 32 - 0.5);
}

/**
 * Times every shape × variant on `kernel` (weights allocated per shape and released after): a warm-up of two
 * calls each, then `rounds` rounds, each timing every variant in turn for at least `roundMs`; the median round
 * is reported.
 */
export function gemmBench(kernel: Kernel, shapes: readonly GemmShape[], variants: readonly GemmVariant[], blockSize: number, rounds: number, roundMs: number, now: () => number): GemmBenchRow[] {
  const heap = kernel.heap;
  const ex = kernel.exports;
  const rows: GemmBenchRow[] = [];
  for (const { name, m, n, k } of shapes) {
    const blocks = Math.ceil(k / blockSize);
    const n8 = Math.ceil(n / 8) * 8;
    const held: number[] = [];
    const alloc = (bytes: number) => (held.push(heap.alloc(bytes)), held[held.length - 1]);
    const a = alloc(4 * m * k);
    fillFloats(kernel, a, m * k, 1, 2);
    const c = alloc(4 * m * n);
    const scratch = gemmScratch(m, k, blockSize);
    const work = alloc(scratch.work);
    const panel = alloc(scratch.panel);
    const scales = alloc(4 * n * blocks);
    fillFloats(kernel, scales, n * blocks, 3, 0.01);
    // every variant's weights at once, so that rounds interleave: load on a shared machine hits all alike
    const calls = variants.map((variant) => {
      if (variant === "fp32-kernel") {
        const w = alloc(4 * k * n8); // B as packB leaves it: k × 8 floats per panel
        fillFloats(kernel, w, k * n8, 5, 0.06);
        return () => ex.gemm(c, n, a, k, w, 0, m, n, k, 0, work);
      }
      const bits = variant.startsWith("int4") ? 4 : 8;
      const bytes = (n * blocks * blockSize * bits) / 8;
      const w = alloc(bytes);
      fillRandom(kernel, w, bytes, 7);
      const kind = bits === 8 ? 1 : 2;
      const run = variant === "int8-float-kernel" ? ex.gemmW : variant.includes("-i7") ? ex.gemmQ7 : variant === "int4-kernel" ? ex.gemmQ4A8 : variant === "int4-pairs-kernel" ? ex.gemmQ4A8Pairs : variant === "int8-split-kernel" ? ex.gemmQ8A8Split : variant === "int8-a8-kernel" ? ex.gemmQ8A8 : ex.gemmQ;
      return () => run(c, n, a, k, w, scales, kind, blockSize, 0, m, n, k, 0, work, panel, k);
    });
    const outputs = calls.map((call) => {
      call();
      call();
      return new Uint32Array(heap.memory.buffer, c, m * n).slice();
    });
    sameOutput(variants, outputs, "int8-a8-kernel", "int8-split-kernel");
    const times: number[][] = variants.map(() => []);
    for (let r = 0; r < rounds; r++) {
      calls.forEach((call, v) => {
        let count = 0;
        const t0 = now();
        let t1 = t0;
        do {
          call();
          count++;
          t1 = now();
        } while (t1 - t0 < roundMs);
        if (!(t1 > t0)) throw new Error(`the clock did not advance over ${count} calls (frozen timers?)`);
        times[v].push((t1 - t0) / count);
      });
    }
    variants.forEach((variant, v) => {
      const ms = [...times[v]].sort((x, y) => x - y)[times[v].length >> 1];
      rows.push({ name, m, n, k, variant, ms, gops: (2 * m * n * k) / ms / 1e6 });
    });
    for (const at of held) heap.release(at);
  }
  return rows;
}

/**
 * Throws unless variants `x` and `y` (where both are timed) wrote bit-identical products: gemm-q8.ts's full
 * form is exact only where fullDot's probe is right about the engine, and its split form is exact everywhere.
 */
function sameOutput(variants: readonly GemmVariant[], outputs: readonly Uint32Array[], x: GemmVariant, y: GemmVariant): void {
  const i = variants.indexOf(x);
  const j = variants.indexOf(y);
  if (i < 0 || j < 0) return;
  const at = outputs[i].findIndex((v, t) => v !== outputs[j][t]);
  if (at >= 0) throw new Error(`${x} and ${y} differ at output ${at}`);
}
