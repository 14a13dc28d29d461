/** What every benchmarked runtime offers: load a graph, then warm it up and take timed samples on demand. */
import type { BenchGraph } from "../graphs.ts";
import { calibrate, sampleRuns } from "../timing.ts";

/** workerd: onnxruntime-web in workerd; node-web: onnxruntime-web in Node; node-native: onnxruntime-node. */
export type RuntimeName = "workerd" | "node-web" | "node-native";
export const RUNTIME_NAMES: readonly RuntimeName[] = ["workerd", "node-web", "node-native"];

/** One graph loaded in one runtime. */
export interface LoadedGraph {
  /** Session creation (for workerd: after the files were fetched), ms. */
  readonly loadMs: number;
  /** Warm-up runs, then the batch size for `sample` (see timing.ts `calibrate`). */
  calibrate(warmup: number): Promise<number>;
  /** `count` samples of the mean ms per run over `batch` consecutive runs. */
  sample(batch: number, count: number): Promise<number[]>;
  release(): Promise<void>;
}

/** A started runtime. */
export interface BenchRuntime {
  readonly name: RuntimeName;
  /** Creates a session for `graph` with its inputs bound. */
  load(graph: BenchGraph): Promise<LoadedGraph>;
  /** Frees whatever the runtime holds (a workerd process, for one). */
  close(): Promise<void>;
}

/** A graph loaded in-process: `run` executes it once with its inputs bound. */
export function inProcessGraph(loadMs: number, run: () => Promise<unknown>, release: () => Promise<void>): LoadedGraph {
  return {
    loadMs,
    calibrate: (warmup) => calibrate(run, warmup),
    sample: (batch, count) => sampleRuns(run, batch, count),
    release,
  };
}
