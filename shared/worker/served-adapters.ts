/**
 * The LoRA adapters of the model a worker serves, as its manifest lists them: read once per isolate from the
 * model store (a request handler asks, never module load), for `GET /v1/models` and for choosing a model by
 * id before a request reaches its session. Read-only; nothing about a request is kept.
 */
import { readManifest } from "../engine/engine.ts";
import type { AdapterListing } from "../model/adapter-manifest.ts";
import { ModelCache } from "./model-cache.ts";
import { modelStoreFor, type ModelEnv } from "./model-store.ts";

const listings = new ModelCache<readonly AdapterListing[]>();

/** The adapters of `env`'s model (none when its manifest lists none). */
export function servedAdapters(env: ModelEnv): Promise<readonly AdapterListing[]> {
  return listings.get(`${env.MODEL_SOURCE ?? "assets"}:${env.MODEL_ID}`, async () => (await readManifest(modelStoreFor(env))).adapters ?? []);
}
