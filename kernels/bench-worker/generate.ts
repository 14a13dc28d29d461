/**
 * POST /generate: the whole engine inside workerd on a converted model served from a loopback file server:
 * the image is encoded, the prompt prefilled, then `steps` greedy tokens decoded, each phase by the kernel or
 * onnxruntime-web (`vision` / `prefill` default to "ort", `decode` as given). Returns the ids, every step's
 * logits and the decode speed, so a test can compare paths in the runtime that serves them.
 */
import ortWasm from "../../node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm";
import { configureOrt } from "../../shared/engine/ort.ts";
import { Engine } from "../../shared/engine/engine.ts";
import type { DecoderState, ModelStore } from "../../shared/engine/types.ts";
import type { QuantCompute } from "../../shared/kernel/linear.ts";
import { initKernel, type KernelSource } from "../../shared/kernel/module.ts";
import { fromBase64, toBase64 } from "./base64.ts";

export interface GenerateRequest {
  readonly modelUrl: string;
  readonly decode: "ort" | "kernel";
  readonly prefill?: "ort" | "kernel";
  readonly vision?: "ort" | "kernel";
  readonly compute?: QuantCompute;
  readonly pixels: string; // base64 f32[1, 3, S, S]
  readonly ids: readonly number[]; // the prompt
  readonly steps: number;
}

export interface GenerateReply {
  readonly ids: number[];
  readonly logits: string; // base64 f32[steps, vocab]: the logits each id was taken from
  readonly prefillMs: number;
  readonly decodeMsPerToken: number; // steps after the first (that one also loads the decode path)
}

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

/** Runs one request; `kernel` is the source initKernel gets (both builds as compiled modules). */
export async function generate(req: GenerateRequest, kernel: KernelSource): Promise<GenerateReply> {
  configureOrt({ kind: "module", module: ortWasm });
  await initKernel(kernel);
  const store: ModelStore = {
    async get(name) {
      const res = await fetch(new URL(name, req.modelUrl));
      return res.ok ? new Uint8Array(await res.arrayBuffer()) : null;
    },
  };
  const backends = { vision: req.vision ?? "ort", prefill: req.prefill ?? "ort", decode: req.decode } as const;
  const model = await Engine.load(store, { backends, kernel: { compute: req.compute } });
  const t0 = performance.now();
  const soft = await model.encodeImage(new Float32Array(fromBase64(req.pixels).buffer));
  const prefill = await model.prefill(soft, req.ids);
  const t1 = performance.now();
  const vocab = model.config.text.vocab;
  const logits = new Float32Array(req.steps * vocab);
  const ids: number[] = [];
  let state: DecoderState = prefill.state;
  let last = prefill.logits;
  let tDecode = t1;
  for (let k = 0; k < req.steps; k++) {
    logits.set(last, k * vocab);
    ids.push(argmax(last));
    if (k + 1 === req.steps) break;
    ({ state, logits: last } = await model.step(state, ids[k]));
    if (k === 0) tDecode = performance.now();
  }
  const decodeMsPerToken = req.steps > 2 ? (performance.now() - tDecode) / (req.steps - 2) : 0;
  prefill.state.release?.();
  return { ids, logits: toBase64(new Uint8Array(logits.buffer)), prefillMs: t1 - t0, decodeMsPerToken };
}
