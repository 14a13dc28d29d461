/**
 * The decode kernel inside workerd. Routes:
 *   GET  /ping     → { relaxedSimd } (whether this workerd runs the relaxed-SIMD build)
 *   POST /bench    KernelBenchRequest + { flavor? } → KernelBenchResult (synthetic weights, layer-bench.ts)
 *   POST /decode   DecodeRequest → DecodeReply: loads a converted model from a loopback file server and runs
 *                  kernel decode steps from a given (prefill) cache, for the workerd parity test.
 *   POST /stage    StageMemoryRequest → StageMemoryReply: one stage loaded and worked alone (the memory bench).
 *   POST /gemv     GemvRequest → { flavor, y }: one quantised matrix-vector product (kernel tests).
 *   POST /stage-timing StageTimingRequest → StageTimingReply: one pipeline stage timed (the pipeline bench).
 *   POST /hop      {floats, reps} → {ms}: mean round trip of an RPC call to this worker over its SELF binding.
 *   POST /generate GenerateRequest → GenerateReply: the whole engine (each phase on the kernel or onnxruntime-web)
 *                  on such a model, for end-to-end comparisons and tokens/s (generate.ts).
 * Both builds come in as compiled modules through wrangler's `CompiledWasm` rule, as in production.
 */
import relaxedWasm from "../wasm/paligemma-kernel-relaxed.wasm";
import simdWasm from "../wasm/paligemma-kernel-simd.wasm";
import type { DecoderState, ModelStore } from "../../shared/engine/types.ts";
import { KernelTextEngine } from "../../shared/kernel/engine.ts";
import { Linear, type QuantCompute } from "../../shared/kernel/linear.ts";
import { toKernelCodes } from "../../shared/kernel/matrix.ts";
import { KernelModel } from "../../shared/kernel/model.ts";
import { compileKernel, instantiateKernel, type KernelFlavor, type KernelModule } from "../../shared/kernel/module.ts";
import { parseManifest, stagesOf } from "../../shared/model/manifest.ts";
import { runKernelBench, type KernelBenchRequest } from "./layer-bench.ts";
import { fromBase64, toBase64 } from "./base64.ts";
import { gemvBatchBench, type GemvBatchRequest } from "./batch-bench.ts";
import { generate, type GenerateRequest } from "./generate.ts";
import { stageMemory, type StageMemoryRequest } from "./stage-memory.ts";
import { stageTiming, type StageTimingRequest } from "./stage-timing.ts";
import { WorkerEntrypoint } from "cloudflare:workers";

/** The far end of a measured hop: an RPC method that returns its payload. */
export class HopTarget extends WorkerEntrypoint {
  async echo(rows: Float32Array): Promise<Float32Array> {
    return rows;
  }
}

interface BenchEnv {
  readonly SELF?: Service<HopTarget>;
}

/** Mean ms of `reps` RPC round trips carrying `floats` float32 each way, timed as one span (workerd's clock is coarse). */
async function hop(env: BenchEnv, req: { floats: number; reps: number }): Promise<{ ms: number }> {
  if (!env.SELF) throw new Error("no SELF service binding");
  const rows = new Float32Array(req.floats).fill(0.5);
  await env.SELF.echo(rows);
  const t0 = performance.now();
  for (let r = 0; r < req.reps; r++) await env.SELF.echo(rows);
  return { ms: (performance.now() - t0) / req.reps };
}

/** POST /decode body: the model's base URL, the cache to start from and the ids to feed. */
export interface DecodeRequest {
  readonly modelUrl: string;
  readonly flavor?: KernelFlavor;
  readonly compute: QuantCompute;
  readonly length: number; // positions in the starting cache
  readonly cache: string; // base64 f32: per layer keys then values, each [kvHeads, length, hd]
  readonly ids: readonly number[];
}

export interface DecodeReply {
  readonly flavor: KernelFlavor;
  readonly logits: string; // base64 f32[ids.length, vocab]
  readonly memory: ReturnType<KernelModel["memory"]>;
}

/** POST /gemv body: W (MatMulNBits codes + scales), x, and how to multiply. */
export interface GemvRequest {
  readonly flavor?: KernelFlavor;
  readonly compute: QuantCompute;
  readonly bits: 4 | 8;
  readonly n: number;
  readonly k: number;
  readonly blockSize: number;
  readonly codes: string; // base64 u8
  readonly scales: string; // base64 f32
  readonly x: string; // base64 f32
}

async function gemv(req: GemvRequest): Promise<{ flavor: KernelFlavor; y: string }> {
  const kernel = await instantiateKernel(await kernelFor(req.flavor));
  const put = (bytes: Uint8Array) => {
    const at = kernel.heap.alloc(bytes.byteLength);
    kernel.heap.u8(at, bytes.byteLength).set(bytes);
    return at;
  };
  const codes = fromBase64(req.codes);
  toKernelCodes(req.bits, codes);
  const kind = req.bits === 4 ? "q4" : "q8";
  const m = { kind, n: req.n, k: req.k, blockSize: req.blockSize, codes: put(codes), scales: put(fromBase64(req.scales)) } as const;
  const x = put(fromBase64(req.x));
  const y = kernel.heap.alloc(4 * req.n);
  const lin = new Linear(kernel, { kind, blockSize: req.blockSize }, req.compute, req.k);
  lin.prepare(x, req.k);
  lin.apply(m, y);
  return { flavor: kernel.flavor, y: toBase64(kernel.heap.u8(y, 4 * req.n).slice()) };
}

function kernelFor(flavor: KernelFlavor | undefined): Promise<KernelModule> {
  return compileKernel({ kind: "module", module: simdWasm, relaxed: relaxedWasm, prefer: flavor === "simd" ? "simd" : undefined });
}

async function decode(req: DecodeRequest): Promise<DecodeReply> {
  const store: ModelStore = {
    async get(name) {
      const res = await fetch(new URL(name, req.modelUrl));
      return res.ok ? new Uint8Array(await res.arrayBuffer()) : null;
    },
  };
  const manifest = parseManifest(JSON.parse(new TextDecoder().decode((await store.get("manifest.json"))!)));
  const open = async (name: string) => (await fetch(new URL(name, req.modelUrl))).body!;
  const stages = [...stagesOf(manifest, "decoder"), ...stagesOf(manifest, "head")];
  const model = await KernelModel.load(manifest, stages, open, { compute: req.compute, kernel: await kernelFor(req.flavor) });
  const engine = new KernelTextEngine(model);
  const t = manifest.config.text;
  const flat = new Float32Array(fromBase64(req.cache).buffer);
  const per = t.kvHeads * req.length * t.headDim;
  const layer = (l: number, which: number) => flat.slice((2 * l + which) * per, (2 * l + which + 1) * per);
  const start: DecoderState = {
    length: req.length,
    keys: Array.from({ length: t.layers }, (_, l) => layer(l, 0)),
    values: Array.from({ length: t.layers }, (_, l) => layer(l, 1)),
  };
  const first = engine.adopt(start);
  let state: DecoderState = first;
  const logits = new Float32Array(req.ids.length * t.vocab);
  req.ids.forEach((id, i) => {
    const r = engine.step(state, id);
    logits.set(r.logits, i * t.vocab);
    state = r.state;
  });
  const memory = model.memory();
  first.release();
  return { flavor: memory.flavor, logits: toBase64(new Uint8Array(logits.buffer)), memory };
}

export default {
  async fetch(request: Request, env: BenchEnv): Promise<Response> {
    const path = new URL(request.url).pathname;
    try {
      if (path === "/ping") return Response.json({ relaxedSimd: (await kernelFor(undefined)).flavor === "relaxed" });
      if (path === "/bench" && request.method === "POST") {
        const req = (await request.json()) as KernelBenchRequest & { flavor?: KernelFlavor };
        return Response.json(await runKernelBench(await kernelFor(req.flavor), req, () => performance.now()));
      }
      if (path === "/gemv-batch" && request.method === "POST") return Response.json(await gemvBatchBench(await kernelFor(undefined), (await request.json()) as GemvBatchRequest, () => performance.now()));
      if (path === "/gemv" && request.method === "POST") return Response.json(await gemv((await request.json()) as GemvRequest));
      if (path === "/stage" && request.method === "POST") return Response.json(await stageMemory((await request.json()) as StageMemoryRequest, await kernelFor(undefined)));
      if (path === "/stage-timing" && request.method === "POST") return Response.json(await stageTiming((await request.json()) as StageTimingRequest, await kernelFor(undefined)));
      if (path === "/hop" && request.method === "POST") return Response.json(await hop(env, (await request.json()) as { floats: number; reps: number }));
      if (path === "/decode" && request.method === "POST") return Response.json(await decode((await request.json()) as DecodeRequest));
      if (path === "/generate" && request.method === "POST") {
        return Response.json(await generate((await request.json()) as GenerateRequest, { kind: "module", module: simdWasm, relaxed: relaxedWasm }));
      }
      return new Response("not found", { status: 404 });
    } catch (e) {
      return Response.json({ error: e instanceof Error ? `${e.message}\n${e.stack}` : String(e) }, { status: 500 });
    }
  },
};
