/**
 * Times the kernel decode path on synthetic weights of a given decoder shape: one decoder layer for one new
 * token over a `pastTokens` cache (norms, q/k/v/o, RoPE, attention, MLP: the real Forward code), and one LM
 * head slice of `headRows` rows. The same code runs in Node and inside workerd (kernels/bench-worker/), so
 * it imports nothing from Node. Speed does not depend on weight values as long as they stay finite.
 */
import type { TextConfig, ModelConfig } from "../../shared/model/config.ts";
import { KvSequence } from "../../shared/kernel/cache.ts";
import { Forward } from "../../shared/kernel/forward.ts";
import type { KernelHeap } from "../../shared/kernel/heap.ts";
import { Linear, type QuantCompute } from "../../shared/kernel/linear.ts";
import { instantiateKernel, type Kernel, type KernelModule } from "../../shared/kernel/module.ts";
import { VisionEncoder } from "../../shared/kernel/vision.ts";
import { matrixBytes, packedBytes, type KernelHeadSlice, type KernelLayer, type KernelMatrix, type PackedMatrix, type VisionLayerWeights } from "../../shared/kernel/weights.ts";

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
  /** Needed for "vision_layer": its weights are float32 whatever `dtype` says (the kernel vision path). */
  readonly vision?: VisionBenchShape;
  readonly dtype: "fp32" | "int8" | "int4";
  readonly blockSize: number;
  readonly compute: QuantCompute;
  readonly pastTokens: number;
  readonly headRows: number;
  readonly stages: readonly KernelStage[];
  /** Minimum timed milliseconds per round, and rounds (the median round is reported). */
  readonly roundMs: number;
  readonly rounds: number;
}

export type KernelStage = "decode_layer" | "head" | "vision_layer";

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

function matrix(heap: KernelHeap, req: KernelBenchRequest, n: number, k: number, seed: number): KernelMatrix {
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
  const decodeStages = req.stages.filter((s): s is "decode_layer" | "head" => s !== "vision_layer");
  if (decodeStages.length) stages.push(...decodeBench(kernel, req, decodeStages, now));
  if (req.stages.includes("vision_layer")) stages.push(visionStage(kernel, req, now));
  // The weights of every timed stage (the decode layer, the head slice and the vision layer are separate matrices).
  const weightBytes = stages.reduce((a, s) => a + s.weightBytes, 0);
  return { flavor: kernel.flavor, stages, memoryBytes: kernel.heap.stats().memoryBytes, weightBytes, codeBytes: km.codeBytes };
}

/** One decoder layer for one token over the cache, and one head slice (the real Forward code). */
function decodeBench(kernel: Kernel, req: KernelBenchRequest, which: readonly ("decode_layer" | "head")[], now: () => number): KernelBenchStage[] {
  const heap = kernel.heap;
  const t = req.text;
  const config = { text: { ...t, layers: 1 } } as unknown as ModelConfig;
  const q = t.heads * t.headDim;
  const kv = t.kvHeads * t.headDim;
  const layer: KernelLayer = {
    inputNorm: norm(heap, t.hidden),
    postAttnNorm: norm(heap, t.hidden),
    preFfNorm: t.family === "gemma2" ? norm(heap, t.hidden) : null,
    postFfNorm: t.family === "gemma2" ? norm(heap, t.hidden) : null,
    q: matrix(heap, req, q, t.hidden, 11),
    k: matrix(heap, req, kv, t.hidden, 12),
    v: matrix(heap, req, kv, t.hidden, 13),
    o: matrix(heap, req, t.hidden, q, 14),
    gate: matrix(heap, req, t.intermediate, t.hidden, 15),
    up: matrix(heap, req, t.intermediate, t.hidden, 16),
    down: matrix(heap, req, t.hidden, t.intermediate, 17),
  };
  const head: KernelHeadSlice = { from: 0, to: req.headRows, norm: norm(heap, t.hidden), table: matrix(heap, req, req.headRows, t.hidden, 18) };
  const kind = req.dtype === "int8" ? "q8" : req.dtype === "int4" ? "q4" : "f32";
  const linear = new Linear(kernel, { kind, blockSize: req.blockSize }, req.compute, Math.max(t.hidden, q, t.intermediate));
  const seq = new KvSequence(heap, config.text);
  seq.reserve(req.pastTokens + 1);
  fillFloats(heap, seq.keys[0], kv * seq.capacity, 21, 2);
  fillFloats(heap, seq.values[0], kv * seq.capacity, 22, 2);
  const token = new Float32Array(t.hidden).map((_, i) => Math.sin(i));
  const layerBytes = [layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down].reduce((a, m) => a + matrixBytes(m), 0);
  return which.map((stage) => {
    const fwd = stage === "decode_layer" ? new Forward(kernel, config, [layer], [head], linear) : new Forward(kernel, config, [], [head], linear);
    const logits = stage === "head" ? new Float32Array(req.headRows) : null;
    const pass = () => {
      seq.length = req.pastTokens;
      fwd.run(seq, token, logits);
    };
    return { stage, weightBytes: stage === "head" ? matrixBytes(head.table) : layerBytes, ...timeRounds(pass, req, now) };
  });
}

/** One SigLIP encoder layer over all image tokens (the real VisionEncoder code), synthetic float32 weights. */
function visionStage(kernel: Kernel, req: KernelBenchRequest, now: () => number): KernelBenchStage {
  if (!req.vision) throw new Error("vision_layer needs the request's vision shape");
  const { tokens: n, hidden: d, heads, intermediate } = req.vision;
  const heap = kernel.heap;
  let seed = 31;
  const packed = (k: number, nOut: number): PackedMatrix => {
    const cols = Math.ceil(nOut / 8) * 8;
    const b = heap.alloc(4 * k * cols);
    fillFloats(heap, b, k * cols, seed++, 0.06);
    const bias = heap.alloc(4 * cols);
    fillFloats(heap, bias, cols, seed++, 0.02);
    return { k, n: nOut, b, bias };
  };
  const ln = () => ({ w: norm(heap, d), b: heap.calloc(4 * d) });
  const layer: VisionLayerWeights = { ln1: ln(), ln2: ln(), qkv: packed(d, 3 * d), o: packed(d, d), fc1: packed(d, intermediate), fc2: packed(intermediate, d) };
  const encoder = new VisionEncoder(kernel, { tokens: n, hidden: d, heads, intermediate, eps: 1e-6, extraK: 0 });
  const x = heap.alloc(4 * n * d);
  const x0 = new Float32Array(n * d).map((_, i) => Math.sin(i));
  const pass = () => {
    heap.f32(x, n * d).set(x0); // the layer works in place: every pass starts from the same input
    encoder.layer(x, layer);
  };
  const weightBytes = [layer.qkv, layer.o, layer.fc1, layer.fc2].reduce((a, m) => a + packedBytes(m), 0);
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
