/**
 * The stage a stage worker's env names, made once per isolate: the model's manifest from the store, the kernel
 * module compiled from the bundle (never onnxruntime: a stage worker's bundle holds the kernel only), and a
 * {@link KernelStage} for the stage named by `STAGE`. Its weights load on the first call that needs them; a LoRA
 * adapter's factors for this stage on the first call naming it, kept under `ADAPTER_CACHE_MB` (default 16).
 */
import kernelSimd from "../../kernels/wasm/paligemma-kernel-simd.wasm";
import kernelRelaxed from "../../kernels/wasm/paligemma-kernel-relaxed.wasm";
import { ConfigError, ModelFormatError } from "../../shared/errors.ts";
import { initKernel } from "../../shared/kernel/module.ts";
import type { ByteSource } from "../../shared/kernel/stage-file.ts";
import { parseManifest } from "../../shared/model/manifest.ts";
import { KernelStage } from "../../shared/pipeline/kernel-stage.ts";
import { ModelCache } from "../../shared/worker/model-cache.ts";
import { intVar } from "../../shared/worker/env-vars.ts";
import { modelStoreFor, type ModelEnv } from "../../shared/worker/model-store.ts";
import { AdapterRegistry } from "../../shared/engine/adapters.ts";
import { DEFAULT_ADAPTER_BYTES } from "../../shared/kernel/adapter-cache.ts";

/** A stage worker's bindings and vars. */
export interface StageEnv extends ModelEnv {
  /** The manifest name of the stage this worker serves (e.g. "decoder-3", "decoder-l3.1", "head-0"). */
  readonly STAGE: string;
  /** Sessions whose caches the stage keeps (default: what the stage was planned for, else 4). */
  readonly MAX_SESSIONS?: string;
  /** Session rows a batched step takes at most (default: 16 where batching shares work, else 1; KernelStage.step). */
  readonly STEP_BATCH?: string;
}

/** This isolate's stage (one per model and stage name; a stage worker serves one). */
const stages = new ModelCache<KernelStage>();

/** The stage `env` names, made on first use. */
export function stageOf(env: StageEnv): Promise<KernelStage> {
  if (!env.STAGE) return Promise.reject(new ConfigError("STAGE is not set: a stage worker's config names the stage it serves"));
  let maxAdapterBytes: number;
  try {
    maxAdapterBytes = intVar(env.ADAPTER_CACHE_MB, DEFAULT_ADAPTER_BYTES / 1e6, "ADAPTER_CACHE_MB") * 1e6;
  } catch (err) {
    return Promise.reject(err);
  }
  return stages.get(`${env.MODEL_SOURCE ?? "assets"}:${env.MODEL_ID}:${env.STAGE}:${maxAdapterBytes}`, async () => {
    await initKernel({ kind: "module", module: kernelSimd, relaxed: kernelRelaxed });
    const store = modelStoreFor(env);
    const bytes = await store.get("manifest.json");
    if (!bytes) throw new ModelFormatError(`model ${env.MODEL_ID} has no manifest.json in its store`);
    const manifest = parseManifest(JSON.parse(new TextDecoder().decode(bytes)));
    if (!manifest.stages.some((s) => s.name === env.STAGE)) throw new ConfigError(`STAGE "${env.STAGE}" is not a stage of model ${manifest.id}`);
    const open = async (name: string): Promise<ByteSource> => {
      const source = (store.stream ? await store.stream(name) : null) ?? (await store.get(name));
      if (!source) throw new ModelFormatError(`model ${manifest.id}: file ${name} is missing from the model store`);
      return source;
    };
    const maxSessions = env.MAX_SESSIONS ? intVar(env.MAX_SESSIONS, 4, "MAX_SESSIONS") : undefined;
    const stepBatch = env.STEP_BATCH ? intVar(env.STEP_BATCH, 16, "STEP_BATCH") : undefined;
    const adapters = new AdapterRegistry(manifest, store);
    return KernelStage.named(manifest, env.STAGE, open, { maxAdapterBytes, adapters, ...(maxSessions ? { maxSessions } : {}), ...(stepBatch ? { stepBatch } : {}) });
  });
}
