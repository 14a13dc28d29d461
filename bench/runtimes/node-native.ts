/**
 * The baseline: onnxruntime-node's native CPU build with one intra-op and one inter-op thread, on the same
 * graph bytes and weight file (loaded from the .onnx path; external data resolves next to it). Only the
 * benchmark uses onnxruntime-node; the project's runtime code uses onnxruntime-web alone.
 *
 * onnxruntime-node (~290 MB) is not in package.json, so `npm ci` does not install it for people who only serve:
 * `npm run bench:setup` adds it to node_modules (without saving it), and this module loads it lazily, failing
 * with that instruction when it is absent. The types are onnxruntime-common's, the API both onnxruntime
 * packages re-export.
 *
 * Session options are onnxruntime's defaults apart from the thread counts (pre-packing on), so the baseline
 * is native onnxruntime as it is normally used.
 */
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import type * as Ort from "onnxruntime-common";
import type { BenchGraph } from "../graphs.ts";
import { inProcessGraph, type BenchRuntime, type LoadedGraph } from "./types.ts";

/** How to install it: package.json's script pins the version bench/RESULTS.md was measured with. */
export const ONNXRUNTIME_NODE_SETUP = "npm run bench:setup";

/** Thrown when onnxruntime-node cannot be resolved; the message says how to get it. */
export class OnnxruntimeNodeMissing extends Error {
  constructor() {
    super(
      "onnxruntime-node is not installed: the node-native baseline needs it (~290 MB, left out of `npm ci`). " +
        `Run \`${ONNXRUNTIME_NODE_SETUP}\` once, or leave node-native out (--runtimes workerd,node-web).`,
    );
    this.name = "OnnxruntimeNodeMissing";
  }
}

type OrtModule = Pick<typeof Ort, "InferenceSession" | "Tensor">;

/** Loads onnxruntime-node as resolved from `from` (default: this file), or throws OnnxruntimeNodeMissing. */
export async function loadOnnxruntimeNode(from: string = import.meta.url): Promise<OrtModule> {
  let path: string;
  try {
    path = createRequire(from).resolve("onnxruntime-node");
  } catch {
    throw new OnnxruntimeNodeMissing();
  }
  const mod = (await import(pathToFileURL(path).href)) as OrtModule & { default?: OrtModule };
  return mod.default?.InferenceSession ? mod.default : mod;
}

const OPTIONS: Ort.InferenceSession.SessionOptions = {
  executionProviders: ["cpu"],
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: "sequential",
  graphOptimizationLevel: "all",
};

/** The node-native runtime. */
export async function nodeNativeRuntime(): Promise<BenchRuntime> {
  const ort = await loadOnnxruntimeNode();
  return {
    name: "node-native",
    async load(graph: BenchGraph): Promise<LoadedGraph> {
      const t0 = performance.now();
      const session = await ort.InferenceSession.create(graph.graphPath, OPTIONS);
      const loadMs = performance.now() - t0;
      const feeds: Record<string, Ort.Tensor> = {};
      for (const f of graph.feeds) feeds[f.name] = new ort.Tensor("float32", f.data, f.dims);
      return inProcessGraph(loadMs, () => session.run(feeds), () => session.release());
    },
    async close() {},
  };
}
