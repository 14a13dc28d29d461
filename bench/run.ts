/**
 * The benchmark loop: measure memory bandwidth, start the runtimes, then per dtype and stage build one graph
 * (real builders, synthetic weights), load it on every runtime, time it in interleaved rounds, release and
 * delete it. Progress goes to `log`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { measureBandwidth } from "./bandwidth.ts";
import type { StageName } from "./feeds.ts";
import { buildBenchGraph, deriveVariant, parseDtype, sameWeights, type BenchGraph, type DtypeVariant } from "./graphs.ts";
import { toResult, type BenchResult, type MachineNote } from "./report.ts";
import { nodeNativeRuntime } from "./runtimes/node-native.ts";
import { nodeWebRuntime } from "./runtimes/node-web.ts";
import type { BenchRuntime, LoadedGraph, RuntimeName } from "./runtimes/types.ts";
import { workerdRuntime } from "./runtimes/workerd.ts";
import type { BenchShape } from "./shapes.ts";
import { MIN_REPS, type RepPolicy } from "./timing.ts";

/** What to benchmark and how long. */
export interface BenchOptions {
  readonly shape: BenchShape;
  readonly runtimes: readonly RuntimeName[]; // loaded and sampled in this order
  readonly dtypes: readonly string[];
  readonly stages: readonly StageName[];
  readonly reps: RepPolicy;
  readonly bandwidth: { readonly mib: number; readonly passes: number };
  /** Folder for the graphs; default a fresh temporary folder, removed at the end. */
  readonly workDir?: string;
}

/** Everything the report needs. */
export interface BenchOutcome {
  readonly bandwidthGbps: number;
  readonly results: BenchResult[];
  /** `runtime dtype stage: message` for every graph a runtime failed on (the rest still ran). */
  readonly failures: string[];
  readonly machine: MachineNote;
}

type Say = (line: string) => void;

/** Runs the benchmark; `log` receives progress lines (the CLI sends them to stderr). */
export async function runBench(opts: BenchOptions, log: Say): Promise<BenchOutcome> {
  const variants = opts.dtypes.map(parseDtype); // fail on a bad dtype before any slow work
  const start = performance.now();
  const loadStart = loadavg()[0];
  const say: Say = (line) => log(`[${((performance.now() - start) / 1000).toFixed(1).padStart(6)} s] ${line}`);

  say(`measuring single-core read bandwidth (${opts.bandwidth.mib} MiB buffer)…`);
  const bw = await measureBandwidth(opts.bandwidth.mib, opts.bandwidth.passes);
  say(`bandwidth ${bw.gbps.toFixed(1)} GB/s (WASM SIMD ${bw.wasmSimdGbps.toFixed(1)}, memchr ${bw.memchrGbps.toFixed(1)})`);

  const dir = opts.workDir ?? mkdtempSync(join(tmpdir(), "paligemma-bench-"));
  const runtimes: BenchRuntime[] = [];
  const results: BenchResult[] = [];
  const failures: string[] = [];
  try {
    for (const name of opts.runtimes) {
      try {
        runtimes.push(await startRuntime(name, say));
      } catch (err) {
        failures.push(`${name}: could not start: ${err instanceof Error ? err.message : String(err)}`);
        say(`FAILED to start ${name}: ${String(err)}`);
      }
    }
    for (const group of groupBySharedWeights(variants)) {
      for (const stage of opts.stages) {
        const on = runtimes.filter((rt) => runsStage(rt.name, stage));
        if (on.length === 0) continue;
        const t0 = performance.now();
        say(`${stage}-${group[0].label}: building the graph and its synthetic weights…`);
        const base = buildBenchGraph(opts.shape, stage, group[0], dir);
        say(`${base.id}: built ${(base.weightBytes / 1e6).toFixed(1)} MB of weights in ${secs(t0)}`);
        try {
          for (const variant of group) {
            const graph = variant === group[0] ? base : deriveVariant(base, group[0], variant, dir);
            if (graph !== base) say(`${graph.id}: same weights as ${base.id}, accuracy_level ${variant.fmt.accuracyLevel}`);
            try {
              results.push(...(await timeGraph(graph, on, repsAt(opts.reps, start), say, failures)));
            } finally {
              if (graph !== base) rmSync(graph.graphPath, { force: true });
            }
          }
        } finally {
          rmSync(base.graphPath, { force: true });
          rmSync(base.weightsPath, { force: true });
        }
      }
    }
  } finally {
    for (const rt of runtimes) await rt.close().catch((err) => say(`closing ${rt.name}: ${String(err)}`));
    if (!opts.workDir) rmSync(dir, { recursive: true, force: true });
  }
  say("done");
  const machine = { cpu: cpus()[0]?.model ?? "unknown CPU", cores: availableParallelism(), loadAverage: { start: loadStart, end: loadavg()[0] } };
  return { bandwidthGbps: bw.gbps, results, failures, machine };
}

interface Active {
  readonly rt: BenchRuntime;
  readonly graph: LoadedGraph;
  batch: number;
  readonly samples: number[];
}

/**
 * Loads `graph` on every runtime, calibrates each, then takes one sample per runtime per round until
 * `reps` says stop. A runtime that fails is dropped from this graph and recorded in `failures`.
 */
async function timeGraph(graph: BenchGraph, runtimes: readonly BenchRuntime[], reps: RepPolicy, say: Say, failures: string[]): Promise<BenchResult[]> {
  const active: Active[] = [];
  const fail = (rt: BenchRuntime, err: unknown) => {
    const msg = `${rt.name} ${graph.id}: ${err instanceof Error ? err.message : String(err)}`;
    failures.push(msg);
    say(`  FAILED ${msg}`);
  };
  const drop = async (a: Active, err: unknown) => {
    fail(a.rt, err);
    active.splice(active.indexOf(a), 1);
    await a.graph.release().catch(() => {});
  };
  try {
    for (const rt of runtimes) {
      try {
        const loaded = await rt.load(graph);
        active.push({ rt, graph: loaded, batch: 1, samples: [] });
        say(`  ${rt.name}: session created in ${(loaded.loadMs / 1000).toFixed(1)} s`);
      } catch (err) {
        fail(rt, err);
      }
    }
    for (const a of [...active]) {
      try {
        a.batch = await a.graph.calibrate(reps.warmup);
      } catch (err) {
        await drop(a, err);
      }
    }
    const t0 = performance.now();
    for (let round = 0; round < reps.maxRounds && (round < reps.minRounds || performance.now() - t0 < reps.budgetMs); round++) {
      for (const a of [...active]) {
        try {
          a.samples.push(...(await a.graph.sample(a.batch, 1)));
        } catch (err) {
          await drop(a, err);
        }
      }
    }
    const results = active.map((a) => toResult(a.rt.name, graph, a.samples, a.graph.loadMs));
    for (const r of results) say(`  ${r.runtime}: ${r.ms.toFixed(2)} ms, ${r.gbps.toFixed(1)} GB/s (median of ${r.runs})`);
    return results;
  } finally {
    for (const a of active) await a.graph.release().catch((err) => say(`  releasing ${graph.id} on ${a.rt.name}: ${String(err)}`));
  }
}

/**
 * The prefill is timed on onnxruntime-node only (the baseline the kernel's prefill rows are compared with):
 * onnxruntime-web's 270-row prefill takes seconds per layer and no row needs it.
 */
export function runsStage(runtime: RuntimeName, stage: StageName): boolean {
  return stage !== "prefill_layer" || runtime === "node-native";
}

/** Variants in first-appearance order, those sharing weight bytes together (int4 with int4-acc4). */
function groupBySharedWeights(variants: readonly DtypeVariant[]): DtypeVariant[][] {
  const groups: DtypeVariant[][] = [];
  for (const v of variants) {
    const g = groups.find((grp) => sameWeights(grp[0], v));
    if (g) g.push(v);
    else groups.push([v]);
  }
  return groups;
}

/** Past SLOW_AFTER_MS into the run (a loaded machine), time with the fewest rounds to stay within 10 minutes. */
const SLOW_AFTER_MS = 5.5 * 60_000;

function repsAt(reps: RepPolicy, start: number): RepPolicy {
  if (performance.now() - start < SLOW_AFTER_MS || reps.maxRounds <= MIN_REPS.maxRounds) return reps;
  return MIN_REPS;
}

function startRuntime(name: RuntimeName, say: Say): Promise<BenchRuntime> {
  if (name === "node-native") return nodeNativeRuntime();
  if (name === "node-web") return nodeWebRuntime();
  say("workerd: starting the bench worker (wrangler dev server)…");
  return workerdRuntime(say);
}

function secs(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(1)} s`;
}
