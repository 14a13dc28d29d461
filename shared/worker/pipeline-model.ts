/**
 * A model served as a pipeline of stage workers, as a worker sees it: its config binds each stage's Worker as
 * `STAGE_<NAME>` (shared/api/stage-rpc.ts `stageBinding`; scripts/stage-configs.ts writes those configs), and
 * the worker's engine is a {@link PipelineEngine} over those bindings instead of a kernel instance of its own.
 * A worker with no `STAGE_*` binding serves its model in its own isolate, as before. `STAGE_<NAME>_R1`, `_R2`, …
 * bind further replicas of a decoder stage: prompts are then spread over them (shared/pipeline/spread.ts);
 * `PREFILL_CALL_MS` sets the CPU budget of one prefill stage call (default 10,000 ms).
 */
import { stageBinding, type StageInfo, type StageRpc } from "../api/stage-rpc.ts";
import { replicaBinding } from "../api/spread-rpc.ts";
import { intVar } from "./env-vars.ts";
import { ModelFormatError } from "../errors.ts";
import { parseManifest, type Manifest } from "../model/manifest.ts";
import { PipelineEngine } from "../pipeline/coordinator.ts";
import type { ModelCache } from "./model-cache.ts";
import { modelStoreFor, type ModelEnv } from "./model-store.ts";
import { loadTokenizer, servingModel, type ServingModel } from "./serving-model.ts";

const PREFIX = "STAGE_";

/** The stage bindings of `env`, by binding name. */
export function stageBindings(env: object): Map<string, StageRpc> {
  const out = new Map<string, StageRpc>();
  for (const [k, v] of Object.entries(env)) if (k.startsWith(PREFIX) && v && typeof v === "object") out.set(k, v as StageRpc);
  return out;
}

/** Whether `env` binds stage workers (the model is then served as a pipeline). */
export function isPipelined(env: object): boolean {
  return stageBindings(env).size > 0;
}

/** A serving model whose engine is a pipeline. */
export interface PipelineModel extends ServingModel {
  readonly engine: PipelineEngine;
}

/** The manifest `env`'s model store holds. */
export async function storeManifest(env: ModelEnv): Promise<Manifest> {
  const bytes = await modelStoreFor(env).get("manifest.json");
  if (!bytes) throw new ModelFormatError(`model ${env.MODEL_ID} has no manifest.json in its store`);
  return parseManifest(JSON.parse(new TextDecoder().decode(bytes)));
}

/**
 * The pipelined model `env` names, made once per isolate (the coordinator holds no weights: the manifest, the
 * tokenizer when asked, the stage bindings and a few hundred embedding rows).
 */
export function pipelineModel(cache: ModelCache<ServingModel>, env: ModelEnv, opts: { tokenizer: boolean }): Promise<PipelineModel> {
  const key = `pipeline:${env.MODEL_SOURCE ?? "assets"}:${env.MODEL_ID}:${opts.tokenizer ? "t" : "-"}`;
  return cache.get(key, async () => {
    const manifest = await storeManifest(env);
    const bindings = stageBindings(env);
    const replicas = (name: string): StageRpc[] => {
      const out: StageRpc[] = [];
      for (let i = 1; bindings.has(replicaBinding(stageBinding(name), i)); i++) out.push(bindings.get(replicaBinding(stageBinding(name), i))!);
      return out;
    };
    const callMs = (env as { PREFILL_CALL_MS?: string }).PREFILL_CALL_MS;
    const engine = new PipelineEngine(manifest, (s) => bindings.get(stageBinding(s.name)), {
      replicas: (s) => replicas(s.name),
      ...(callMs ? { prefillCallMs: intVar(callMs, 10_000, "PREFILL_CALL_MS") } : {}),
    });
    const tokenizer = opts.tokenizer ? await loadTokenizer(modelStoreFor(env), manifest) : null;
    return servingModel(manifest, engine, tokenizer);
  }) as Promise<PipelineModel>;
}

/** {@link pipelineModel}, after asking every stage whether it answers (a 503 with retry-after when one does not). */
export async function checkedPipelineModel(cache: ModelCache<ServingModel>, env: ModelEnv, opts: { tokenizer: boolean }): Promise<PipelineModel> {
  const model = await pipelineModel(cache, env, opts);
  await model.engine.check();
  return model;
}

/** A stage as `GET /v1/models` lists it. */
export interface ListedStage {
  readonly name: string;
  readonly kind: StageInfo["kind"];
  readonly from: number;
  readonly to: number;
  readonly mlp?: { readonly from: number; readonly to: number };
  /** Whether its weights are in memory: null where no stage worker serves it (it loads inside a session). */
  readonly loaded: boolean | null;
  /** Sessions whose caches its stage worker holds (null as for `loaded`). */
  readonly sessions: number | null;
  /** The stage worker's binding, null for a stage not served by one. */
  readonly worker: string | null;
  /** LoRA adapters whose factors the stage worker holds, with this stage's bytes (null: no worker, or unreachable). */
  readonly adapters: readonly { readonly name: string; readonly bytes: number }[] | null;
  /** Its further replicas' bindings and whether each is loaded (present only when it has some). */
  readonly replicas?: readonly { readonly worker: string; readonly loaded: boolean }[];
}

/** Every stage of the model, each stage worker asked whether it is loaded and which adapters it holds (an unreachable one: false, null). */
export async function listStages(env: ModelEnv): Promise<ListedStage[]> {
  const manifest = await storeManifest(env);
  const bindings = stageBindings(env);
  return Promise.all(
    manifest.stages.map(async (s) => {
      const binding = stageBinding(s.name);
      const rpc = bindings.get(binding);
      const info = rpc ? await rpc.describe().then((d) => d, () => null) : null;
      const [loaded, sessions] = rpc ? [info?.loaded ?? false, info?.sessions ?? 0] : [null, null];
      const adapters = info ? info.adapters.map((a) => ({ name: a.name, bytes: a.bytes })) : null;
      const replicas: { worker: string; loaded: boolean }[] = [];
      for (let i = 1; bindings.has(replicaBinding(binding, i)); i++) {
        replicas.push({ worker: replicaBinding(binding, i), loaded: await bindings.get(replicaBinding(binding, i))!.describe().then((d) => d.loaded, () => false) });
      }
      const listed = { name: s.name, kind: s.kind, from: s.from, to: s.to, ...(s.mlp ? { mlp: s.mlp } : {}), loaded, sessions, worker: rpc ? binding : null, adapters };
      return replicas.length ? { ...listed, replicas } : listed;
    }),
  );
}
