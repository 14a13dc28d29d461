/**
 * Turns timings into results (ms per layer / per whole-head pass, GB/s of weights streamed) and prints them:
 * a table for people and one JSON line for machines.
 */
import type { StageName } from "./feeds.ts";
import type { BenchGraph } from "./graphs.ts";
import type { RuntimeName } from "./runtimes/types.ts";
import type { BenchShape } from "./shapes.ts";
import { median } from "./timing.ts";

/** One row of the JSON contract, plus what the table shows besides. */
export interface BenchResult {
  readonly runtime: RuntimeName;
  readonly dtype: string;
  readonly stage: StageName;
  readonly ms: number; // median ms of one layer (decode_layer, prefill_layer, vision_layer) or one whole-head pass (head)
  readonly bestMs: number; // the fastest sample, same unit (a hint of the noise on a shared machine)
  readonly gbps: number; // weight bytes streamed per second, 10⁹ bytes/s
  readonly runs: number; // timed samples (each the mean of a batch of runs when a run is short)
  readonly loadMs: number; // session creation for the whole benchmark graph
}

/** The machine-readable report: `--json` prints it as the last stdout line. */
export interface BenchJson {
  readonly bandwidth_gbps: number;
  readonly results: { runtime: RuntimeName; dtype: string; stage: StageName; ms: number; gbps: number }[];
}

/** One graph's samples (ms per run) on one runtime → its result row. */
export function toResult(runtime: RuntimeName, graph: BenchGraph, samples: readonly number[], loadMs: number): BenchResult {
  const runMs = median(samples);
  return {
    runtime,
    dtype: graph.dtype,
    stage: graph.stage,
    ms: (runMs / graph.perUnit) * graph.scale,
    bestMs: (Math.min(...samples) / graph.perUnit) * graph.scale,
    gbps: graph.weightBytes / (runMs / 1000) / 1e9,
    runs: samples.length,
    loadMs,
  };
}

const round = (x: number, digits = 3) => Number(x.toFixed(digits));

/** The JSON contract, numbers rounded to 3 decimals. */
export function toJson(bandwidthGbps: number, results: readonly BenchResult[]): BenchJson {
  return {
    bandwidth_gbps: round(bandwidthGbps),
    results: results.map((r) => ({ runtime: r.runtime, dtype: r.dtype, stage: r.stage, ms: round(r.ms), gbps: round(r.gbps) })),
  };
}

function find(results: readonly BenchResult[], runtime: RuntimeName, dtype: string, stage: StageName): BenchResult | undefined {
  return results.find((r) => r.runtime === runtime && r.dtype === dtype && r.stage === stage);
}

/** Speed of `r` relative to node-native on the same dtype and stage (> 1 = faster than native). */
export function vsNative(results: readonly BenchResult[], r: BenchResult): number | null {
  const native = find(results, "node-native", r.dtype, r.stage);
  return native ? native.ms / r.ms : null;
}

/** Tokens/s for a runtime and dtype, extrapolated to all decoder layers + the whole head. */
export function tokensPerSecond(results: readonly BenchResult[], shape: BenchShape, runtime: RuntimeName, dtype: string): number | null {
  const decode = find(results, runtime, dtype, "decode_layer");
  const head = find(results, runtime, dtype, "head");
  if (!decode || !head) return null;
  return 1000 / (shape.config.text.layers * decode.ms + head.ms);
}

/** A Markdown table; the first `left` columns are left-aligned, the rest right-aligned. */
function table(header: string[], rows: string[][], left: number): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i < left ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (i < left ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}

/** Rows ordered by dtype (first appearance), stage, then runtime (native baseline first). */
export function sortResults(results: readonly BenchResult[]): BenchResult[] {
  const dtypes = [...new Set(results.map((r) => r.dtype))];
  const stages: StageName[] = ["decode_layer", "prefill_layer", "vision_layer", "head"];
  const runtimes: RuntimeName[] = ["node-native", "node-web", "workerd"];
  const key = (r: BenchResult) => [dtypes.indexOf(r.dtype), stages.indexOf(r.stage), runtimes.indexOf(r.runtime)];
  return [...results].sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
  });
}

/** Where the numbers come from: printed above the tables. */
export interface MachineNote {
  readonly cpu: string;
  readonly cores: number;
  readonly loadAverage: { readonly start: number; readonly end: number }; // 1-minute, whole machine
}

/** The human-readable report (Markdown tables). */
export function formatReport(shape: BenchShape, bandwidthGbps: number, unsorted: readonly BenchResult[], machine: MachineNote): string {
  const c = shape.config;
  const results = sortResults(unsorted);
  const fmt = (x: number | null, d = 1) => (x === null ? "–" : x.toFixed(d));
  const rows = results.map((r) => [
    r.runtime,
    r.dtype,
    r.stage,
    fmt(r.ms, 2),
    fmt(r.bestMs, 2),
    fmt(r.gbps, 2),
    `${((100 * r.gbps) / bandwidthGbps).toFixed(0)}%`,
    fmt(vsNative(results, r), 2),
    String(r.runs),
    fmt(r.loadMs / 1000, 1),
  ]);
  const out = [
    `shape ${shape.name}: decode_layer = one token over a ${shape.pastTokens}-token cache, per layer (median of a ${shape.decoder.to - shape.decoder.from}-layer graph ÷ layers);`,
    `prefill_layer = ${shape.prefillRows} prompt rows from an empty cache (prefix-LM: all bidirectional), per layer, onnxruntime-node only;`,
    `vision_layer = ${c.imageTokens} tokens, per layer (${shape.vision.to - shape.vision.from}-layer graph ÷ layers); head = one token through the WHOLE ${c.text.vocab}-row head,`,
    `extrapolated from one ${shape.headRows}-row slice (slice ms × ${c.text.vocab}/${shape.headRows}).`,
    `measured single-core read bandwidth: ${bandwidthGbps.toFixed(1)} GB/s (GB = 10⁹ bytes); GB/s = weight bytes / median run time`,
    `machine: ${machine.cpu}, ${machine.cores} cores; 1-minute load average ${machine.loadAverage.start.toFixed(1)} at start, ${machine.loadAverage.end.toFixed(1)} at end`,
    "",
    table(["runtime", "dtype", "stage", "ms", "best ms", "GB/s", "of bw", "× native", "runs", "load s"], rows, 3),
    "",
  ];
  const pairs = [...new Set(results.map((r) => `${r.runtime}\u0000${r.dtype}`))].map((k) => k.split("\u0000") as [RuntimeName, string]);
  const tok = pairs.map(([runtime, dtype]) => {
    const vision = find(results, runtime, dtype, "vision_layer");
    return [runtime, dtype, fmt(tokensPerSecond(results, shape, runtime, dtype), 2), vision ? fmt((vision.ms * c.vision.layers) / 1000, 2) : "–"];
  });
  out.push(`tokens/s = 1000 / (${c.text.layers} × decode_layer ms + head ms); image s = ${c.vision.layers} × vision_layer ms`, "");
  out.push(table(["runtime", "dtype", "tokens/s", "image s"], tok, 2), "");
  const goal = (stage: StageName, target: number) => {
    const w = find(results, "workerd", "fp32", stage);
    const ratio = w ? vsNative(results, w) : null;
    return `fp32 ${stage}: workerd at ${fmt(ratio, 2)}× node-native (goal ≥ ${target}×)${ratio === null ? "" : ratio >= target ? " met" : " NOT met"}`;
  };
  out.push(goal("decode_layer", 0.8), goal("vision_layer", 0.3));
  return out.join("\n");
}
