/**
 * Benchmark rows of the kernel decode path (shared/kernel/), in the report's JSON contract
 * `{runtime, dtype, stage, ms, gbps}`: runtime "workerd" is the kernel inside workerd (kernels/bench-worker/
 * under wrangler's dev server on a free loopback port), "node-kernel" the same code in this Node process.
 * Weights are synthetic, in the given decoder shape (bench/shapes.ts: Gemma 2B for paligemma-3b).
 *
 *   const rows = await kernelRows({ text: shape.config.text, pastTokens: shape.pastTokens, headRows: shape.headRows });
 *
 * dtype labels say which onnxruntime row each one is compared with:
 *   "int4-acc4-kernel" / "int8-acc4-kernel"  int8 activations   ↔ node-native "int4-acc4" / "int8-acc4"
 *   "int4-kernel" / "int8-kernel"            float activations  ↔ node-native "int4" / "int8"
 *   "fp32-kernel"                                               ↔ node-native "fp32"
 * For prefill_layer, vision_layer and gemm rows (GEMMs, {@link LAYER_VARIANTS}): "int8-kernel" / "int4-kernel"
 * run the models' default integer GEMM (int8 weights × int16 activations, gemm-q.ts; int4 weights × int8
 * activations, gemm-q4.ts), "int4-i16-kernel" int4 weights × int16 activations (gemm-q.ts, the int4 default
 * before), "int8-a8-kernel" int8 weights × int8 activations (gemm-q8.ts), "int8-float-kernel" the float GEMM over dequantised int8 panels (↔ node-native "int8").
 * stage "decode_layer": ms of one decoder layer for one token over a `pastTokens` cache; "prefill_layer": ms of
 * one decoder layer over `prefillRows` prompt rows from an empty cache (the real Prefill code); "head": ms of the
 * whole head, extrapolated from one `headRows` slice (× vocab / headRows) as the onnxruntime rows are.
 * gbps = weight bytes streamed (codes + scales) per second of the timed pass, 10⁹ bytes/s.
 */
import { statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { KernelBenchRequest, KernelBenchResult, KernelStage, VisionBenchShape } from "../kernels/bench-worker/layer-bench.ts";
import { runKernelBench } from "../kernels/bench-worker/layer-bench.ts";
import type { GemmShape } from "../kernels/bench-worker/gemm-bench.ts";
import type { GemmCompute } from "../shared/kernel/gemm.ts";
import type { QuantCompute } from "../shared/kernel/linear.ts";
import { compileKernel } from "../shared/kernel/module.ts";
import { kernelSourceForNode } from "../shared/kernel/node.ts";
import type { TextConfig } from "../shared/model/config.ts";

const CONFIG = fileURLToPath(new URL("../kernels/bench-worker/wrangler.toml", import.meta.url));

export type KernelRuntime = "workerd" | "node-kernel";

/** One result row (the JSON contract's fields) plus the kernel instance's memory. */
export interface KernelRow {
  readonly runtime: KernelRuntime;
  readonly dtype: string;
  readonly stage: KernelStage | "gemm";
  readonly ms: number;
  readonly gbps: number;
  /** GEMM rows only: the layer matrix, its product's shape and 2·m·n·k / time in 10⁹ operations per second. */
  readonly name?: string;
  readonly shape?: { readonly m: number; readonly n: number; readonly k: number };
  readonly gops?: number;
  readonly flavor: string; // "relaxed" or "simd": which kernel build ran
  /** The kernel instance holding this benchmark: .wasm bytes, linear memory, and what of it is not weights. */
  readonly memory: { readonly codeBytes: number; readonly memoryBytes: number; readonly overheadBytes: number };
}

export interface KernelRowsOptions {
  readonly text: TextConfig;
  readonly pastTokens: number;
  readonly headRows: number;
  readonly dtypes?: readonly ("int8" | "int4" | "fp32")[]; // default int4, int8, fp32
  readonly computes?: readonly QuantCompute[]; // default int8 (acc4) and float (acc0) activations
  readonly stages?: readonly ("decode_layer" | "head")[]; // default both
  /** Also time one decoder layer over this many prompt rows (stage "prefill_layer"), per `layerVariants`. */
  readonly prefillRows?: number;
  /** Also time one vision encoder layer of this shape (stage "vision_layer"), per `layerVariants`. */
  readonly vision?: VisionBenchShape;
  /** Weights and GEMM of the prefill and vision rows (default {@link LAYER_VARIANTS}). */
  readonly layerVariants?: readonly LayerVariant[];
  /** Also time these products alone (stage "gemm", one row per shape × GEMM_VARIANTS label). */
  readonly gemmShapes?: readonly GemmShape[];
  readonly runtimes?: readonly KernelRuntime[]; // default both
  readonly blockSize?: number; // default 32, the converter's
  readonly quick?: boolean; // shorter timing (smoke tests)
  readonly log?: (line: string) => void;
}

/** Times every requested dtype × compute × runtime and returns the rows (workerd first). */
export async function kernelRows(opts: KernelRowsOptions): Promise<KernelRow[]> {
  const log = opts.log ?? (() => {});
  const runtimes = opts.runtimes ?? ["workerd", "node-kernel"];
  const requests: { label: string; req: KernelBenchRequest }[] = [];
  for (const dtype of opts.dtypes ?? ["int4", "int8", "fp32"]) {
    for (const compute of dtype === "fp32" ? (["float"] as const) : (opts.computes ?? ["int8", "float"])) {
      const label = dtype === "fp32" ? "fp32-kernel" : compute === "int8" ? `${dtype}-acc4-kernel` : `${dtype}-kernel`;
      const req: KernelBenchRequest = {
        text: opts.text,
        dtype,
        blockSize: opts.blockSize ?? 32,
        compute,
        pastTokens: opts.pastTokens,
        headRows: Math.min(opts.headRows, opts.text.vocab),
        stages: opts.stages ?? ["decode_layer", "head"],
        roundMs: opts.quick ? 50 : 250,
        rounds: opts.quick ? 2 : 7,
      };
      requests.push({ label, req });
    }
  }
  for (const { label, dtype, gemm } of opts.prefillRows ? (opts.layerVariants ?? LAYER_VARIANTS) : []) {
    // the prefill's GEMMs read the weights as stored: compute (a GEMV setting) does not apply
    const req: KernelBenchRequest = {
      text: opts.text,
      dtype,
      gemm,
      blockSize: opts.blockSize ?? 32,
      compute: "float",
      pastTokens: 0,
      prefillRows: opts.prefillRows,
      headRows: 1,
      stages: ["prefill_layer"],
      roundMs: opts.quick ? 20 : 100, // one pass per round at PaliGemma-3B's size (≥ 0.3 s)
      rounds: opts.quick ? 2 : 3,
    };
    requests.push({ label, req });
  }
  for (const { label, dtype, gemm } of opts.vision ? (opts.layerVariants ?? LAYER_VARIANTS) : []) {
    const req: KernelBenchRequest = {
      text: opts.text,
      vision: opts.vision,
      dtype,
      gemm,
      blockSize: opts.blockSize ?? 32,
      compute: "float",
      pastTokens: opts.pastTokens,
      headRows: Math.min(opts.headRows, opts.text.vocab),
      stages: ["vision_layer"],
      roundMs: opts.quick ? 50 : 250,
      rounds: opts.quick ? 2 : 5,
    };
    requests.push({ label, req });
  }
  if (opts.gemmShapes?.length) {
    const req: KernelBenchRequest = { text: opts.text, dtype: "fp32", blockSize: opts.blockSize ?? 32, compute: "float", pastTokens: 0, headRows: 1, stages: [], gemmShapes: opts.gemmShapes, roundMs: opts.quick ? 20 : 200, rounds: opts.quick ? 2 : 5 };
    requests.push({ label: "gemm", req });
  }
  const rows: KernelRow[] = [];
  for (const runtime of runtimes) {
    const run = runtime === "workerd" ? await workerdBench(log) : await nodeBench();
    try {
      for (const { label, req } of requests) {
        log(`  ${runtime}: ${label}`);
        rows.push(...toRows(runtime, label, req, await run.bench(req)));
      }
    } finally {
      await run.close();
    }
  }
  return rows;
}

function toRows(runtime: KernelRuntime, dtype: string, req: KernelBenchRequest, r: KernelBenchResult): KernelRow[] {
  const codeBytes = r.codeBytes || wasmBytes(r.flavor); // workerd is handed compiled modules: same files
  const memory = { codeBytes, memoryBytes: r.memoryBytes, overheadBytes: r.memoryBytes - r.weightBytes };
  const stages: KernelRow[] = r.stages.map((s) => ({
    runtime,
    dtype,
    stage: s.stage,
    ms: s.stage === "head" ? (s.ms * req.text.vocab) / req.headRows : s.ms,
    gbps: s.weightBytes / s.ms / 1e6,
    flavor: r.flavor,
    memory,
  }));
  const bytesPer = (v: string) => (v.startsWith("fp32") ? 4 : v.startsWith("int4") ? 0.5 : 1) + (v.startsWith("fp32") ? 0 : 4 / req.blockSize);
  const gemm: KernelRow[] = (r.gemm ?? []).map((g) => ({
    runtime,
    dtype: g.variant,
    stage: "gemm",
    name: g.name,
    shape: { m: g.m, n: g.n, k: g.k },
    ms: g.ms,
    gops: g.gops,
    gbps: (g.n * g.k * bytesPer(g.variant)) / g.ms / 1e6,
    flavor: r.flavor,
    memory,
  }));
  return [...stages, ...gemm];
}

/** Weights and GEMM of one prefill / vision row: the label is the row's dtype. */
export interface LayerVariant {
  readonly label: string;
  readonly dtype: "fp32" | "int8" | "int4";
  readonly gemm: GemmCompute;
}

/**
 * fp32 weights (float32 GEMM), int8 and int4 through the integer GEMM (the models' default, "int8"), int4 through
 * gemm-q.ts's int16 activations (the int4 default before gemm-q4.ts), int8 × int8 activations (gemm-q8.ts, the
 * "int8-a8" option), and int8 through
 * the float GEMM over dequantised panels (the `gemm: "float"` option, the path before the integer GEMM).
 */
export const LAYER_VARIANTS: readonly LayerVariant[] = [
  { label: "fp32-kernel", dtype: "fp32", gemm: "float" },
  { label: "int8-kernel", dtype: "int8", gemm: "int8" },
  { label: "int4-kernel", dtype: "int4", gemm: "int8" },
  { label: "int4-i16-kernel", dtype: "int4", gemm: "int16" },
  { label: "int8-a8-kernel", dtype: "int8", gemm: "int8-a8" },
  { label: "int8-float-kernel", dtype: "int8", gemm: "float" },
];

function wasmBytes(flavor: string): number {
  return statSync(new URL(`../kernels/wasm/paligemma-kernel-${flavor}.wasm`, import.meta.url)).size;
}

interface BenchTarget {
  bench(req: KernelBenchRequest): Promise<KernelBenchResult>;
  close(): Promise<void>;
}

async function nodeBench(): Promise<BenchTarget> {
  const km = await compileKernel(await kernelSourceForNode());
  return { bench: (req) => runKernelBench(km, req, () => performance.now()), close: async () => {} };
}

async function workerdBench(log: (line: string) => void): Promise<BenchTarget> {
  const t0 = performance.now();
  const { unstable_startWorker } = await import("wrangler");
  const worker = await unstable_startWorker({
    config: CONFIG,
    dev: { server: { hostname: "127.0.0.1", port: 0 }, inspector: false, logLevel: "error", watch: false, persist: false },
  });
  const url = await worker.url;
  log(`workerd: kernel bench worker ready at ${url.origin} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return {
    async bench(req) {
      const res = await fetch(new URL("/bench", url), { method: "POST", body: JSON.stringify(req), headers: { "content-type": "application/json" } });
      const json = (await res.json()) as KernelBenchResult & { error?: string };
      if (!res.ok || json.error) throw new Error(`kernel bench worker: ${json.error ?? `HTTP ${res.status}`}`);
      return json;
    },
    close: () => worker.dispose(),
  };
}

/** `tsx bench/kernel-rows.ts [--quick]`: the rows for PaliGemma-3B's decoder (Gemma 2B), one JSON line each. */
async function main(): Promise<void> {
  const { benchShape } = await import("./shapes.ts");
  const shape = benchShape("paligemma-3b", 1, 1);
  const rows = await kernelRows({ text: shape.config.text, pastTokens: shape.pastTokens, headRows: shape.headRows, quick: process.argv.includes("--quick"), log: (l) => process.stderr.write(`${l}\n`) });
  for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
