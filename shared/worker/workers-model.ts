/**
 * Workers-only model loading: onnxruntime's WASM comes from the bundle (wrangler's `CompiledWasm` rule), because
 * workerd refuses to compile WebAssembly from bytes at run time (docs: workerd-onnxruntime.md). Node code must
 * not import this module; it uses cli/node-runtime.ts instead.
 */
// A relative path: wrangler's module collector resolves .wasm imports against the importing file, not node_modules.
import ortWasm from "../../node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm";
import kernelSimd from "../../kernels/wasm/paligemma-kernel-simd.wasm";
import kernelRelaxed from "../../kernels/wasm/paligemma-kernel-relaxed.wasm";
import { KERNEL_BACKENDS } from "../engine/engine.ts";
import { configureOrt } from "../engine/ort.ts";
import type { EngineBackends } from "../engine/types.ts";
import { initKernel } from "../kernel/module.ts";
import { ModelCache } from "./model-cache.ts";
import { modelStoreFor, type ModelEnv } from "./model-store.ts";
import { loadServingModel, type ServingModel } from "./serving-model.ts";
import { intVar } from "./env-vars.ts";
import { DEFAULT_ADAPTER_BYTES } from "../kernel/adapter-cache.ts";

/** A phase's backend from a wrangler var: "ort" switches it to onnxruntime-web, anything else (default) the kernel. */
export function backendVar(value: string | undefined): "ort" | "kernel" {
  return value === "ort" ? "ort" : "kernel";
}

/**
 * The model `env` names, loaded once per isolate and shared by its requests (read-only). Called from request
 * handlers only, never at module load. Every phase runs in the kernel module unless `backends` says otherwise;
 * onnxruntime-web is only configured (its compiled module registered), never instantiated, until a phase uses it.
 */
export function workersModel(cache: ModelCache<ServingModel>, env: ModelEnv, opts: { tokenizer: boolean; backends: Partial<EngineBackends> }): Promise<ServingModel> {
  const backends: EngineBackends = { ...KERNEL_BACKENDS, ...opts.backends };
  const maxAdapterBytes = intVar(env.ADAPTER_CACHE_MB, DEFAULT_ADAPTER_BYTES / 1e6, "ADAPTER_CACHE_MB") * 1e6;
  const key = `${env.MODEL_SOURCE ?? "assets"}:${env.MODEL_ID}:${opts.tokenizer ? "t" : "-"}:${backends.vision}:${backends.prefill}:${backends.decode}:${maxAdapterBytes}`;
  return cache.get(key, async () => {
    configureOrt({ kind: "module", module: ortWasm });
    await initKernel({ kind: "module", module: kernelSimd, relaxed: kernelRelaxed });
    return loadServingModel(modelStoreFor(env), { tokenizer: opts.tokenizer, backends, maxAdapterBytes });
  });
}
