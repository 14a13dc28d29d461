/**
 * The baseline: onnxruntime-node's native CPU build with one intra-op and one inter-op thread, on the same
 * graph bytes and weight file (loaded from the .onnx path; external data resolves next to it). Only the
 * benchmark imports onnxruntime-node; the project's runtime code uses onnxruntime-web alone.
 *
 * Session options are onnxruntime's defaults apart from the thread counts (pre-packing on), so the baseline
 * is native onnxruntime as it is normally used.
 */
import * as ort from "onnxruntime-node";
import type { BenchGraph } from "../graphs.ts";
import { inProcessGraph, type BenchRuntime, type LoadedGraph } from "./types.ts";

const OPTIONS: ort.InferenceSession.SessionOptions = {
  executionProviders: ["cpu"],
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: "sequential",
  graphOptimizationLevel: "all",
};

/** The node-native runtime. */
export async function nodeNativeRuntime(): Promise<BenchRuntime> {
  return {
    name: "node-native",
    async load(graph: BenchGraph): Promise<LoadedGraph> {
      const t0 = performance.now();
      const session = await ort.InferenceSession.create(graph.graphPath, OPTIONS);
      const loadMs = performance.now() - t0;
      const feeds: Record<string, ort.Tensor> = {};
      for (const f of graph.feeds) feeds[f.name] = new ort.Tensor("float32", f.data, f.dims);
      return inProcessGraph(loadMs, () => session.run(feeds), () => session.release());
    },
    async close() {},
  };
}
