/**
 * Times the kernel on synthetic weights of a given decoder shape: one decoder layer for one new token over a
 * `pastTokens` cache (norms, q/k/v/o, RoPE, attention, MLP: the real Forward code), one decoder layer over a
 * `prefillRows` prompt (the real Prefill code), one LM head slice of `headRows` rows, one SigLIP layer. The same code runs in Node and inside workerd (kernels/bench-worker/), so
 * it imports nothing from Node. Speed does not depend on weight values as long as they stay finite.
 */
import type { TextConfig, ModelConfig } from "../../shared/model/config.ts";
import { KvSequence } from "../../shared/kernel/cache.ts";
import { Forward } from "../../shared/kernel/forward.ts";
import type { KernelHeap } from "../../shared/kernel/heap.ts";
import { Linear, type QuantCompute } from "../../shared/kernel/linear.ts";
import { instantiateKernel, type Kernel, type KernelModule } from "../../shared/kernel/module.ts";
import { VisionEncoder } from "../../shared/kernel/vision.ts";
import type { HeadSlice, LayerSlice } from "../../shared/kernel/decoder-weights.ts";
import { matrixBytes, type KernelLinear, type KernelMatrix } from "../../shared/kernel/matrix.ts";
import { Prefill } from "../../shared/kernel/prefill.ts";
import type { GemmCompute } from "../../shared/kernel/gemm.ts";
import { gemmBench, GEMM_VARIANTS, type GemmBenchRow, type GemmShape, type GemmVariant } from "./gemm-bench.ts";
import type { VisionLayerWeights } from "../../shared/kernel/vision-weights.ts";

/** A SigLIP encoder's sizes (the vision_layer stage). */
export interface VisionBenchShape {
  readonly tokens: number;
  readonly hidden: number;
  readonly heads: number;
  readonly intermediate: number;
}

/** What to time. */
export interface KernelBenchRequest {
  readonly text: TextConfig;
  /** Needed for "vision_layer" (weights in `dtype`, as the kernel vision path holds them). */
  readonly vision?: VisionBenchShape;
  /** Prompt rows of "prefill_layer" (default 270: 256 image tokens and a short prefix). */
  readonly prefillRows?: number;
  readonly dtype: "fp32" | "int8" | "int4";
  readonly blockSize: number;
  readonly compute: QuantCompute;
  readonly pastTokens: number;
  readonly headRows: number;
  readonly stages: readonly KernelStage[];
  /** How prefill and vision GEMMs meet int8/int4 weights (default gemm.ts DEFAULT_GEMM, the models' default). */
  readonly gemm?: GemmCompute;
  /** Also time these products alone (gemm-bench.ts), per `gemmVariants` (default all). */
  readonly gemmShapes?: readonly GemmShape[];
  readonly gemmVariants?: readonly GemmVariant[];
  /** Minimum timed milliseconds per round, and rounds (the median round is reported). */
  readonly roundMs: number;
  readonly rounds: number;
}

export type KernelStage = "decode_layer" | "head" | "vision_layer" | "prefill_layer";

/** One timed stage: ms per pass (median round) and the weight bytes one pass streams. */
export interface KernelBenchStage {
  readonly stage: KernelStage;
  readonly ms: number;
  readonly weightBytes: number;
  readonly rounds: readonly number[];
}

export interface KernelBenchResult {
  readonly flavor: string;
  readonly stages: readonly KernelBenchStage[];
  /** The kernel instance's linear memory, and what of it is not weights (scratch, cache, allocator slack). */
  readonly memoryBytes: number;
  readonly weightBytes: number;
  readonly codeBytes: number;
  /** The GEMM rows, when the request asked for `gemmShapes`. */
  readonly gemm?: readonly GemmBenchRow[];
  /** The kernel's fullDot() (gemm-q8.ts's full form runs: its 8-bit dot product is vpdpbusd), with `gemm`. */
  readonly fullDot?: boolean;
}

/** xorshift32 fill of a byte range: fast deterministic "random" codes. */
function fillBytes(heap: KernelHeap, at: number, n: number, seed: number): void {
  const words = new Uint32Array(heap.memory.buffer, at, n >> 2);
  let x = seed | 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
}

function fillFloats(heap: KernelHeap, at: number, n: number, seed: number, scale: number, offset = 0): void {
  fillBytes(heap, at, 4 * n, seed);
  const u = new Uint32Array(heap.memory.buffer, at, n);
  const f = new Float32Array(heap.memory.buffer, at, n);
  for (let i = 0; i < n; i++) f[i] = offset + scale * (u[i] / 2 ** 32 - 0.5);
}

/** A synthetic [n, k] matrix in `req.dtype` (codes and scales from xorshift), allocated in `heap`. */
export function matrix(heap: KernelHeap, req: Pick<KernelBenchRequest, "dtype" | "blockSize">, n: number, k: number, seed: number): KernelMatrix {
  if (req.dtype === "fp32") {
    const w = heap.alloc(4 * n * k);
    fillFloats(heap, w, n * k, seed, 0.06);
    return { kind: "f32", n, k, w };
  }
  const bits = req.dtype === "int8" ? 8 : 4;
  const blocks = Math.ceil(k / req.blockSize);
  const codeBytes = (n * blocks * req.blockSize * bits) / 8;
  const codes = heap.alloc(codeBytes);
  fillBytes(heap, codes, codeBytes, seed);
  const scales = heap.alloc(4 * n * blocks);
  fillFloats(heap, scales, n * blocks, seed + 1, bits === 8 ? 0.0004 : 0.006, bits === 8 ? 0.0004 : 0.006);
  return { kind: bits === 8 ? "q8" : "q4", n, k, blockSize: req.blockSize, codes, scales };
}

function norm(heap: KernelHeap, n: number): number {
  const at = heap.alloc(4 * n);
  heap.f32(at, n).fill(1);
  return at;
}

/** Runs the request on a fresh instance of `km`; `now` is the clock in ms. */
export async function runKernelBench(km: KernelModule, req: KernelBenchRequest, now: () => number): Promise<KernelBenchResult> {
  const kernel = await instantiateKernel(km);
  const stages: KernelBenchStage[] = [];
  const decodeStages = req.stages.filter((s): s is "decode_layer" | "head" | "prefill_layer" => s !== "vision_layer");
  if (decodeStages.length) stages.push(...decodeBench(kernel, req, decodeStages, now));
  if (req.stages.includes("vision_layer")) stages.push(visionStage(kernel, req, now));
  // The weights of every timed stage (the decode layer, the head slice and the vision layer are separate matrices).
  const weightBytes = stages.reduce((a, s) => a + s.weightBytes, 0);
  const gemm = req.gemmShapes ? gemmBench(kernel, req.gemmShapes, req.gemmVariants ?? GEMM_VARIANTS, req.blockSize, req.rounds, req.roundMs, now) : undefined;
  const fullDot = gemm ? kernel.exports.fullDot() === 1 : undefined;
  return { flavor: kernel.flavor, stages, memoryBytes: kernel.heap.stats().memoryBytes, weightBytes, codeBytes: km.codeBytes, gemm, fullDot };
}

/** One decoder layer for one token over the cache, and one head slice (the real Forward code). */
function decodeBench(kernel: Kernel, req: KernelBenchRequest, which: readonly ("decode_layer" | "head" | "prefill_layer")[], now: () => number): KernelBenchStage[] {
  const heap = kernel.heap;
  const t = req.text;
  const config = { text: { ...t, layers: 1 } } as unknown as ModelConfig;
  const q = t.heads * t.headDim;
  const kv = t.kvHeads * t.headDim;
  const gemma2 = t.family === "gemma2";
  const layer: LayerSlice = {
    index: 0,
    attention: {
      inputNorm: norm(heap, t.hidden),
      postAttnNorm: gemma2 ? norm(heap, t.hidden) : null,
      q: matrix(heap, req, q, t.hidden, 11),
      k: matrix(heap, req, kv, t.hidden, 12),
      v: matrix(heap, req, kv, t.hidden, 13),
      o: matrix(heap, req, t.hidden, q, 14),
    },
    mlpNorm: norm(heap, t.hidden),
    postFfNorm: gemma2 ? norm(heap, t.hidden) : null,
    parts: [{ from: 0, to: t.intermediate, gate: matrix(heap, req, t.intermediate, t.hidden, 15), up: matrix(heap, req, t.intermediate, t.hidden, 16), down: matrix(heap, req, t.hidden, t.intermediate, 17) }],
    complete: true,
  };
  const head: HeadSlice = { from: 0, to: req.headRows, norm: norm(heap, t.hidden), table: matrix(heap, req, req.headRows, t.hidden, 18) };
  const kind = req.dtype === "int8" ? "q8" : req.dtype === "int4" ? "q4" : "f32";
  const linear = new Linear(kernel, { kind, blockSize: req.blockSize }, req.compute, Math.max(t.hidden, q, t.intermediate));
  const seq = new KvSequence(heap, config.text, [0]);
  const rows = req.prefillRows ?? 270;
  seq.reserve(Math.max(req.pastTokens + 1, rows));
  fillFloats(heap, seq.keys[0], kv * seq.capacity, 21, 2);
  fillFloats(heap, seq.values[0], kv * seq.capacity, 22, 2);
  const token = new Float32Array(t.hidden).map((_, i) => Math.sin(i));
  const a = layer.attention!;
  const layerBytes = [a.q, a.k, a.v, a.o, ...layer.parts.flatMap((p) => [p.gate, p.up, p.down])].reduce((sum, m) => sum + matrixBytes(m), 0);
  return which.map((stage) => {
    if (stage === "prefill_layer") {
      const prefill = new Prefill(kernel, config, [layer], undefined, req.gemm);
      const hidden = new Float32Array(rows * t.hidden).map((_, i) => Math.sin(i));
      const pass = () => {
        seq.length = 0;
        prefill.run(seq, hidden, rows);
      };
      return { stage, weightBytes: layerBytes, ...timeRounds(pass, req, now) };
    }
    const fwd = stage === "decode_layer" ? new Forward(kernel, config, [layer], [head], linear) : new Forward(kernel, config, [], [head], linear);
    const logits = stage === "head" ? new Float32Array(req.headRows) : null;
    const pass = () => {
      seq.length = req.pastTokens;
      fwd.run(seq, token, logits);
    };
    return { stage, weightBytes: stage === "head" ? matrixBytes(head.table) : layerBytes, ...timeRounds(pass, req, now) };
  });
}

/** One SigLIP encoder layer over all image tokens (the real VisionEncoder code), synthetic weights in `dtype`. */
function visionStage(kernel: Kernel, req: KernelBenchRequest, now: () => number): KernelBenchStage {
  if (!req.vision) throw new Error("vision_layer needs the request's vision shape");
  const { tokens: n, hidden: d, heads, intermediate } = req.vision;
  const heap = kernel.heap;
  let seed = 31;
  const linear = (nOut: number, k: number): KernelLinear => {
    const cols = Math.ceil(nOut / 8) * 8;
    const bias = heap.alloc(4 * cols);
    fillFloats(heap, bias, cols, seed++, 0.02);
    return { m: matrix(heap, req, nOut, k, seed++), bias };
  };
  const ln = () => ({ w: norm(heap, d), b: heap.calloc(4 * d) });
  const layer: VisionLayerWeights = { ln1: ln(), ln2: ln(), q: linear(d, d), k: linear(d, d), v: linear(d, d), o: linear(d, d), fc1: linear(intermediate, d), fc2: linear(d, intermediate) };
  const encoder = new VisionEncoder(kernel, { tokens: n, hidden: d, heads, intermediate, eps: 1e-6, extraK: 0 }, req.gemm);
  const x = heap.alloc(4 * n * d);
  const x0 = new Float32Array(n * d).map((_, i) => Math.sin(i));
  const pass = () => {
    heap.f32(x, n * d).set(x0); // the layer works in place: every pass starts from the same input
    encoder.layer(x, layer);
  };
  const weightBytes = [layer.q, layer.k, layer.v, layer.o, layer.fc1, layer.fc2].reduce((a, l) => a + matrixBytes(l.m), 0);
  return { stage: "vision_layer", weightBytes, ...timeRounds(pass, req, now) };
}

const MAX_PASSES = 100_000;

/**
 * Median over rounds of (round time / passes): each round repeats `pass` until `roundMs` elapsed, so a
 * coarse clock (workerd's, 1 ms here) still gives sub-millisecond resolution per pass.
 */
function timeRounds(pass: () => void, req: KernelBenchRequest, now: () => number): { ms: number; rounds: number[] } {
  // Warm-up for a round's length: page faults, and V8's tier-up from its baseline WebAssembly compiler
  // (Liftoff, several times slower on SIMD code) to the optimising one.
  for (let t0 = now(), n = 0; n < 2 || now() - t0 < req.roundMs; n++) pass();
  const rounds: number[] = [];
  for (let r = 0; r < req.rounds; r++) {
    let n = 0;
    const t0 = now();
    let t1 = t0;
    do {
      pass();
      n++;
      t1 = now();
    } while (t1 - t0 < req.roundMs && n < MAX_PASSES);
    if (!(t1 > t0)) throw new Error(`the clock did not advance over ${n} passes (frozen timers?)`);
    rounds.push((t1 - t0) / n);
  }
  const sorted = [...rounds].sort((a, b) => a - b);
  return { ms: sorted[sorted.length >> 1], rounds };
}
