/**
 * `tsx bench/gemv-batch.ts [--node] [--quick] [--dtypes int4,int8] [--computes int8,float]`: ms per batched
 * decode step's GEMVs (one PaliGemma-3B decoder layer: hidden 2048, intermediate 16384, 8 heads, 1 KV head,
 * head dim 256; synthetic weights, block size 32) for B = 1, 4, 16 sessions, before (row tiles, the single GEMV
 * per session) and after (the kernel's multi-vector GEMV) in the same run, rounds interleaved. Runs inside
 * workerd (kernels/bench-worker, POST /gemv-batch) unless --node. One JSON line per row on stdout.
 */
import { fileURLToPath } from "node:url";
import { gemvBatchBench, type GemvBatchRequest, type GemvBatchRow } from "../kernels/bench-worker/batch-bench.ts";
import type { QuantCompute } from "../shared/kernel/linear.ts";
import { compileKernel } from "../shared/kernel/module.ts";
import { kernelSourceForNode } from "../shared/kernel/node.ts";
import { benchShape } from "./shapes.ts";

const CONFIG = fileURLToPath(new URL("../kernels/bench-worker/wrangler.toml", import.meta.url));

type Run = (req: GemvBatchRequest) => Promise<{ flavor: string; rows: GemvBatchRow[] }>;

async function workerd(): Promise<{ run: Run; close: () => Promise<void> }> {
  const { unstable_startWorker } = await import("wrangler");
  const worker = await unstable_startWorker({
    config: CONFIG,
    dev: { server: { hostname: "127.0.0.1", port: 0 }, inspector: false, logLevel: "error", watch: false, persist: false },
  });
  const url = await worker.url;
  return {
    async run(req) {
      const res = await fetch(new URL("/gemv-batch", url), { method: "POST", body: JSON.stringify(req), headers: { "content-type": "application/json" } });
      const json = (await res.json()) as { flavor: string; rows: GemvBatchRow[]; error?: string };
      if (!res.ok || json.error) throw new Error(`bench worker: ${json.error ?? `HTTP ${res.status}`}`);
      return json;
    },
    close: () => worker.dispose(),
  };
}

function arg(name: string, fallback: string): string[] {
  const i = process.argv.indexOf(name);
  return (i >= 0 ? process.argv[i + 1] : fallback).split(",");
}

async function main(): Promise<void> {
  const node = process.argv.includes("--node");
  const quick = process.argv.includes("--quick");
  const text = benchShape("paligemma-3b", 1, 1).config.text;
  for (const dtype of arg("--dtypes", "int4,int8") as ("int4" | "int8" | "fp32")[]) {
    for (const compute of arg("--computes", "int8,float") as QuantCompute[]) {
      // A fresh workerd per request: an isolate holding a finished request's kernel instance (~125 MB of int8
      // weights) next to the next one was lost under this machine's memory pressure.
      const target = node
        ? { run: (async (req) => gemvBatchBench(await compileKernel(await kernelSourceForNode()), req, () => performance.now())) as Run, close: async () => {} }
        : await workerd();
      try {
        const req: GemvBatchRequest = { text, dtype, compute, blockSize: 32, batches: [1, 4, 16], roundMs: quick ? 50 : 400, rounds: quick ? 1 : 3 };
        const r = await target.run(req);
        for (const row of r.rows) {
          const line = { runtime: node ? "node-kernel" : "workerd", flavor: r.flavor, dtype, compute, ...row, speedup: +(row.beforeMs / row.afterMs).toFixed(2) };
          process.stdout.write(`${JSON.stringify(line)}\n`);
        }
        const one = r.rows.find((x) => x.batch === 1)!;
        const most = r.rows[r.rows.length - 1];
        process.stderr.write(`${dtype}/${compute}: aggregate at B=${most.batch} vs one session, before ${((most.batch * one.beforeMs) / most.beforeMs).toFixed(2)}×, after ${((most.batch * one.afterMs) / most.afterMs).toFixed(2)}×\n`);
      } finally {
        await target.close();
      }
    }
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
