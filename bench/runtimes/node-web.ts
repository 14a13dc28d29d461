/**
 * onnxruntime-web (WASM, one thread) in this Node process, through the project's own session wrapper
 * (shared/engine/ort.ts: single thread, `session.disable_prepacking=1`), exactly as the CLI runs models.
 */
import { readFileSync } from "node:fs";
import { initOrtForNode } from "../../cli/node-runtime.ts";
import { f32, GraphSession, type Feeds } from "../../shared/engine/ort.ts";
import { stageKind } from "../feeds.ts";
import type { BenchGraph } from "../graphs.ts";
import { inProcessGraph, type BenchRuntime, type LoadedGraph } from "./types.ts";

/** The node-web runtime. */
export async function nodeWebRuntime(): Promise<BenchRuntime> {
  await initOrtForNode();
  return {
    name: "node-web",
    async load(graph: BenchGraph): Promise<LoadedGraph> {
      const t0 = performance.now();
      const session = await GraphSession.create(readFileSync(graph.graphPath), [{ path: graph.weightsName, data: readFileSync(graph.weightsPath) }], {
        prepack: stageKind(graph.stage) !== "vision" /* onnxruntime decodes here: pre-pack as its runtime does */,
      });
      const loadMs = performance.now() - t0;
      const feeds: Feeds = {};
      for (const f of graph.feeds) feeds[f.name] = f32(f.data, f.dims);
      return inProcessGraph(loadMs, () => session.run(feeds), () => session.release());
    },
    async close() {},
  };
}
