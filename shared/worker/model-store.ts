/**
 * Where a worker reads model files: one {@link ModelStore} over either Workers Static Assets (the small default
 * model ships with the worker, `model-shards/` uploaded as private assets: `run_worker_first` keeps them off the
 * public routes) or R2 (large models, uploaded once with `npm run upload`). `MODEL_SOURCE` picks one.
 *
 * Both lay a model out the same way: `<model id>/<file name>`, the manifest's names, as in `model-shards/`.
 */
import type { ModelStore } from "../engine/types.ts";

/** Bindings and vars a worker needs to find its model. */
export interface ModelEnv {
  /** The served model's id, = its folder under model-shards/ (or its prefix in R2). */
  readonly MODEL_ID: string;
  /** "assets" (default) or "r2". */
  readonly MODEL_SOURCE?: string;
  /** Workers Static Assets holding model-shards/. */
  readonly MODEL_ASSETS?: Fetcher;
  /** R2 bucket holding `<model id>/<file>`. */
  readonly MODEL_BUCKET?: R2Bucket;
  /** MB (10^6 bytes) of LoRA factors each kernel instance keeps before dropping the least recently used (16). */
  readonly ADAPTER_CACHE_MB?: string;
}

/** Static Assets as a model store. Any host name works: the binding only looks at the path. */
export function assetsStore(assets: Fetcher, modelId: string): ModelStore {
  const open = async (name: string): Promise<Response | null> => {
    const res = await assets.fetch(`https://assets.invalid/${encodeURIComponent(modelId)}/${encodePath(name)}`);
    if (res.status === 404) return null;
    if (!res.ok) throw new Error(`model assets: ${modelId}/${name} answered ${res.status}`);
    return res;
  };
  return {
    async get(name) {
      const res = await open(name);
      return res ? new Uint8Array(await res.arrayBuffer()) : null;
    },
    async stream(name) {
      return (await open(name))?.body ?? null;
    },
  };
}

/** An R2 bucket as a model store. */
export function r2Store(bucket: R2Bucket, modelId: string): ModelStore {
  return {
    async get(name) {
      const object = await bucket.get(`${modelId}/${name}`);
      return object === null ? null : new Uint8Array(await object.arrayBuffer());
    },
    async stream(name) {
      const object = await bucket.get(`${modelId}/${name}`);
      return object === null ? null : object.body;
    },
  };
}

/** The store `env` configures; throws when the chosen source has no binding. */
export function modelStoreFor(env: ModelEnv): ModelStore {
  const source = env.MODEL_SOURCE ?? "assets";
  if (source === "assets") {
    if (!env.MODEL_ASSETS) throw new Error("MODEL_SOURCE is assets but the MODEL_ASSETS binding is missing");
    return assetsStore(env.MODEL_ASSETS, env.MODEL_ID);
  }
  if (source === "r2") {
    if (!env.MODEL_BUCKET) throw new Error("MODEL_SOURCE is r2 but the MODEL_BUCKET binding is missing");
    return r2Store(env.MODEL_BUCKET, env.MODEL_ID);
  }
  throw new Error(`MODEL_SOURCE must be "assets" or "r2", got "${source}"`);
}

function encodePath(name: string): string {
  return name.split("/").map(encodeURIComponent).join("/");
}
