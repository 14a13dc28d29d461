/**
 * Workers-only model loading: onnxruntime's WASM comes from the bundle (wrangler's `CompiledWasm` rule), because
 * workerd refuses to compile WebAssembly from bytes at run time (docs: workerd-onnxruntime.md). Node code must
 * not import this module; it uses cli/node-runtime.ts instead.
 */
// A relative path: wrangler's module collector resolves .wasm imports against the importing file, not node_modules.
import ortWasm from "../../node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm";
import kernelSimd from "../../kernels/wasm/paligemma-kernel-simd.wasm";
import kernelRelaxed from "../../kernels/wasm/paligemma-kernel-relaxed.wasm";
import { configureOrt } from "../engine/ort.ts";
import { initKernel } from "../kernel/module.ts";
import { ModelCache } from "./model-cache.ts";
import { modelStoreFor, type ModelEnv } from "./model-store.ts";
import { loadServingModel, type ServingModel } from "./serving-model.ts";

/**
 * The model `env` names, loaded once per isolate and shared by its requests (read-only). Called from request
 * handlers only, never at module load.
 */
export function workersModel(
  cache: ModelCache<ServingModel>,
  env: ModelEnv,
  opts: { tokenizer: boolean; decode?: "ort" | "kernel"; vision?: "ort" | "kernel" },
): Promise<ServingModel> {
  const decode = opts.decode ?? "ort";
  const vision = opts.vision ?? "ort";
  const key = `${env.MODEL_SOURCE ?? "assets"}:${env.MODEL_ID}:${opts.tokenizer ? "t" : "-"}:${decode}:${vision}`;
  return cache.get(key, async () => {
    configureOrt({ kind: "module", module: ortWasm });
    // The kernel module (kernels/): decode steps as int8/int4/fp32 GEMVs, the vision tower as float32 GEMMs
    // with fused multiply-adds; the prefill stays on onnxruntime.
    if (decode === "kernel" || vision === "kernel") await initKernel({ kind: "module", module: kernelSimd, relaxed: kernelRelaxed });
    return loadServingModel(modelStoreFor(env), { ...opts, decode, vision });
  });
}
