/**
 * The kernel inside workerd (kernels/bench-worker/ under wrangler's dev server): both builds arrive as
 * compiled modules, the relaxed-SIMD one is chosen at start-up, and a converted model decodes there from a
 * cache prefilled by onnxruntime in Node. The plain-SIMD build gives bit-identical logits to the same build
 * in Node; the relaxed build (fused multiply-add) stays within the kernel-vs-onnxruntime tolerance.
 */
import { cpSync, createReadStream, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convert } from "../../converter/convert.ts";
import { loadModel } from "../../cli/node-runtime.ts";
import { fromBase64, toBase64 } from "../../kernels/bench-worker/base64.ts";
import type { GenerateReply, GenerateRequest } from "../../kernels/bench-worker/generate.ts";
import type { DecodeReply, DecodeRequest, GemvRequest } from "../../kernels/bench-worker/index.ts";
import type { KernelBenchResult } from "../../kernels/bench-worker/layer-bench.ts";
import type { DecoderState } from "../../shared/engine/types.ts";
import { kernelSourceForNode } from "../../shared/kernel/node.ts";
import { initKernel } from "../../shared/kernel/module.ts";
import { loadGolden, maxAbsDiff } from "../helpers/golden.ts";
import { GEMV_SHAPES, nmse, randomNBits, refGemv, refGemvInt8, uniform } from "./helpers.ts";

const CONFIG = fileURLToPath(new URL("../../kernels/bench-worker/wrangler.toml", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "pg-kernel-workerd-"));
let files: Server;
let filesUrl = "";
let worker: { url: Promise<URL>; dispose(): Promise<void> } | null = null;
let workerUrl: URL;

beforeAll(async () => {
  files = createServer((req, res) => {
    const path = normalize(join(work, decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname)));
    if (!path.startsWith(work) || !existsSync(path)) return void res.writeHead(404).end();
    createReadStream(path).pipe(res);
  });
  await new Promise<void>((ok) => files.listen(0, "127.0.0.1", ok));
  filesUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
  const { unstable_startWorker } = await import("wrangler");
  worker = await unstable_startWorker({
    config: CONFIG,
    dev: { server: { hostname: "127.0.0.1", port: 0 }, inspector: false, logLevel: "error", watch: false, persist: false },
  });
  workerUrl = await worker.url;
}, 120_000);

afterAll(async () => {
  await worker?.dispose();
  files?.close();
  rmSync(work, { recursive: true, force: true });
});

async function post<T>(path: string, body: unknown): Promise<T> {
  const res = await fetch(new URL(path, workerUrl), { method: "POST", body: JSON.stringify(body) });
  const json = (await res.json()) as T & { error?: string };
  if (!res.ok || json.error) throw new Error(`worker ${path}: ${json.error ?? res.status}`);
  return json;
}

function flatCache(state: DecoderState): string {
  const parts = state.keys.flatMap((k, l) => [k, state.values[l]]);
  const flat = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) flat.set(p, (at += p.length) - p.length);
  return toBase64(new Uint8Array(flat.buffer));
}

describe("the kernel inside workerd", () => {
  it("runs the relaxed-SIMD build there", async () => {
    const ping = (await (await fetch(new URL("/ping", workerUrl))).json()) as { relaxedSimd: boolean };
    expect(ping.relaxedSimd).toBe(true);
  });

  it("computes int4/int8 products with both builds exactly as the references (the shapes of gemv.test.ts)", async () => {
    for (const flavor of ["relaxed", "simd"] as const) {
      for (const bits of [4, 8] as const) {
        for (const { n, k, bs } of GEMV_SHAPES) {
          const { codes, scales } = randomNBits(n, k, bits, bs, n * k + bits);
          const x = uniform(k, 7 + k);
          const bytes = (a: Float32Array | Uint8Array) => toBase64(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
          for (const compute of ["int8", "float"] as const) {
            const req: GemvRequest = { flavor, compute, bits, n, k, blockSize: bs, codes: bytes(codes), scales: bytes(scales), x: bytes(x) };
            const r = await post<{ flavor: string; y: string }>("/gemv", req);
            expect(r.flavor).toBe(flavor);
            const y = new Float32Array(fromBase64(r.y).buffer);
            const ref = compute === "int8" ? refGemvInt8(codes, scales, x, n, k, bits, bs) : refGemv(codes, scales, x, n, k, bits, bs);
            const e = nmse(y, ref);
            expect(e.nmse, `${flavor} int${bits} [${n}, ${k}] /${bs} ${compute}: worst row ${e.worst}`).toBeLessThan(1e-12);
          }
        }
      }
    }
  });

  for (const dtype of ["int4", "int8", "fp32"] as const) {
    it(`${dtype}: decodes a prefilled cache like the kernel in Node and like onnxruntime`, async () => {
      const g = loadGolden("paligemma-shapes");
      const name = `shapes-${dtype}`;
      await convert(g.dir, join(work, name), { dtype, maxShardMb: dtype === "fp32" ? 4 : null }); // fp32: two decoder stages
      const dir = join(work, name);
      const ort = await loadModel(dir, { vision: "ort", prefill: "ort", decode: "ort" });
      if (dtype === "fp32") expect(ort.manifest.stages.filter((st) => st.kind === "decoder").length).toBeGreaterThan(1);
      const prefill = await ort.prefill(await ort.encodeImage(g.pixelValues), g.inputIds);
      const ids = g.greedyIds.slice(0, 6);

      await initKernel(await kernelSourceForNode());
      for (const compute of dtype === "fp32" ? (["float"] as const) : (["int8", "float"] as const)) {
        const node = await loadModel(dir, { vision: "ort", prefill: "ort", decode: "kernel" }, { compute });
        let s: DecoderState = (await node.prefill(await node.encodeImage(g.pixelValues), g.inputIds)).state; // adopted into a kernel sequence
        // workerd decodes from exactly this cache (read back out of the kernel sequence).
        const base = { modelUrl: `${filesUrl}/${name}/`, length: s.length, cache: flatCache(s), ids };
        const nodeKernel = (await node.kernelMemory()).text!.flavor;
        expect(nodeKernel).toBe("relaxed"); // Node ≥ 22 validates relaxed SIMD without a flag
        let o: DecoderState = prefill.state;
        const want: Float32Array[] = [];
        const ortLogits: Float32Array[] = [];
        for (const id of ids) {
          const r = await node.step(s, id);
          want.push(r.logits);
          s = r.state;
          const q = await ort.step(o, id);
          ortLogits.push(q.logits);
          o = q.state;
        }
        for (const flavor of ["simd", "relaxed"] as const) {
          const reply = await post<DecodeReply>("/decode", { ...base, compute, flavor } satisfies DecodeRequest);
          expect(reply.flavor).toBe(flavor);
          const got = new Float32Array(fromBase64(reply.logits).buffer);
          const vocab = node.config.text.vocab;
          ids.forEach((_, k) => {
            const step = got.subarray(k * vocab, (k + 1) * vocab);
            if (flavor === nodeKernel) expect(Array.from(step), `${compute} step ${k}: same build, same bits`).toEqual(Array.from(want[k]));
            const tol = compute === "float" ? 1e-4 : 0.35;
            const d = maxAbsDiff(step, ortLogits[k]);
            expect(d.max, `${flavor}/${compute} step ${k} vs onnxruntime, worst at ${d.at}`).toBeLessThanOrEqual(tol);
          });
          expect(reply.memory.weightBytes).toBeGreaterThan(0);
        }
      }
    });
  }

  it("generates with the whole engine there: all-kernel = kernel decode = onnxruntime = transformers' greedy ids", async () => {
    const g = loadGolden("paligemma-shapes");
    cpSync(fileURLToPath(new URL("../../model-shards/paligemma-shapes", import.meta.url)), join(work, "default"), { recursive: true });
    const base = { modelUrl: `${filesUrl}/default/`, pixels: toBase64(new Uint8Array(g.pixelValues.buffer)), ids: g.inputIds, steps: g.greedyIds.length };
    const ort = await post<GenerateReply>("/generate", { ...base, decode: "ort" } satisfies GenerateRequest);
    const kernel = await post<GenerateReply>("/generate", { ...base, decode: "kernel" } satisfies GenerateRequest);
    expect(ort.ids).toEqual(g.greedyIds);
    expect(kernel.ids).toEqual(g.greedyIds);
    const a = new Float32Array(fromBase64(ort.logits).buffer);
    const b = new Float32Array(fromBase64(kernel.logits).buffer);
    const d = maxAbsDiff(b, a);
    expect(d.max, `kernel vs onnxruntime in workerd, worst at step ${Math.floor(d.at / g.vocab)}`).toBeLessThanOrEqual(1e-4);
    expect(kernel.decodeMsPerToken).toBeGreaterThan(0);
    const all = await post<GenerateReply>("/generate", { ...base, vision: "kernel", prefill: "kernel", decode: "kernel" } satisfies GenerateRequest);
    expect(all.ids).toEqual(g.greedyIds);
    const e = maxAbsDiff(new Float32Array(fromBase64(all.logits).buffer), a);
    expect(e.max, `all-kernel vs onnxruntime in workerd, worst at step ${Math.floor(e.at / g.vocab)}`).toBeLessThanOrEqual(1e-4 * 22.3);
  });

  it("times a decoder layer and a head slice (the benchmark route)", async () => {
    const manifest = JSON.parse(readFileSync(new URL("../../model-shards/paligemma-shapes/manifest.json", import.meta.url), "utf8"));
    const text = manifest.config.text;
    const r = await post<KernelBenchResult>("/bench", { text, dtype: "int4", blockSize: 32, compute: "int8", pastTokens: 40, headRows: 256, prefillRows: 40, stages: ["decode_layer", "head", "prefill_layer"], roundMs: 20, rounds: 3 });
    expect(r.flavor).toBe("relaxed");
    expect(r.stages.map((s) => s.stage)).toEqual(["decode_layer", "head", "prefill_layer"]);
    for (const s of r.stages) expect(s.ms).toBeGreaterThan(0);
  });

  it("gemm-q8.ts's full form (vpdpbusd over all 8 bits) gives its exact split form's products, bit for bit", async () => {
    // gemmBench throws (an error reply) where the int8-a8 and int8-split outputs of a shape differ
    const gemmShapes = [{ name: "a", m: 13, n: 21, k: 96 }, { name: "b", m: 270, n: 64, k: 2048 }, { name: "c", m: 7, n: 9, k: 4304 }];
    const r = await post<KernelBenchResult>("/bench", { text: JSON.parse(readFileSync(new URL("../../model-shards/paligemma-shapes/manifest.json", import.meta.url), "utf8")).config.text, dtype: "int8", blockSize: 32, compute: "int8", pastTokens: 1, headRows: 8, stages: [], gemmShapes, gemmVariants: ["int8-a8-kernel", "int8-split-kernel"], roundMs: 1, rounds: 1 });
    expect(r.gemm!.map((g) => `${g.name} ${g.variant}`)).toEqual(gemmShapes.flatMap((s) => [`${s.name} int8-a8-kernel`, `${s.name} int8-split-kernel`]));
    // where the CPU has AVX-VNNI, V8 emits vpdpbusd and the full form is what ran (docs/kernels.md)
    const vnni = existsSync("/proc/cpuinfo") && /\bavx_vnni\b/.test(readFileSync("/proc/cpuinfo", "utf8"));
    if (vnni) expect(r.fullDot).toBe(true);
  });
});
