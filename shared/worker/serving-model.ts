/**
 * A loaded model as the serving layer uses it: the manifest, the engine and the tokenizer. Both workers load
 * it through the same engine, which loads a group of stages only when it is first used: the vision worker only
 * ever loads the vision stages, the decoder the decoder and head stages.
 */
import type { PaliGemmaEngine, ModelStore } from "../engine/types.ts";
import { Engine } from "../engine/engine.ts";
import type { EngineBackends } from "../engine/types.ts";
import { ModelFormatError } from "../errors.ts";
import { PREPROCESS_VERSION, type Manifest } from "../model/manifest.ts";
import { PaliGemmaTokenizer } from "../text/tokenizer.ts";
import { sha256Hex } from "./hash.ts";

/** What a worker holds per model. */
export interface ServingModel {
  readonly manifest: Manifest;
  readonly engine: PaliGemmaEngine;
  /** Null in the vision worker (it never tokenizes) or for a model shipped without a tokenizer. */
  readonly tokenizer: PaliGemmaTokenizer | null;
  /** Identifies the preprocessing (code version and settings): part of every soft-token cache key. */
  readonly preprocessVersion: string;
}

/** Builds a serving model from an engine and its manifest. */
export async function servingModel(
  manifest: Manifest,
  engine: PaliGemmaEngine,
  tokenizer: PaliGemmaTokenizer | null,
): Promise<ServingModel> {
  return { manifest, engine, tokenizer, preprocessVersion: await preprocessVersionOf(manifest) };
}

/** `p<code version>-<hash of the manifest's preprocess settings>`. */
export async function preprocessVersionOf(manifest: Pick<Manifest, "preprocess">): Promise<string> {
  const settings = await sha256Hex(JSON.stringify(manifest.preprocess));
  return `p${PREPROCESS_VERSION}-${settings.slice(0, 16)}`;
}

/** Reads the tokenizer files the manifest names. */
export async function loadTokenizer(store: ModelStore, manifest: Manifest): Promise<PaliGemmaTokenizer | null> {
  const spec = manifest.tokenizer;
  if (!spec) return null;
  const json = await readJson(store, spec.file);
  const config = spec.configFile ? await readJson(store, spec.configFile) : undefined;
  return PaliGemmaTokenizer.fromJson(json, config);
}

/**
 * Loads a converted model from a store with the backends chosen per phase (the kernel module and onnxruntime
 * must already be set up for this runtime; onnxruntime is only instantiated if a phase uses it).
 */
export async function loadServingModel(store: ModelStore, opts: { tokenizer: boolean; backends: EngineBackends; maxAdapterBytes?: number }): Promise<ServingModel> {
  const engine = await Engine.load(store, { backends: opts.backends, kernel: opts.maxAdapterBytes === undefined ? undefined : { maxAdapterBytes: opts.maxAdapterBytes } });
  const tokenizer = opts.tokenizer ? await loadTokenizer(store, engine.manifest) : null;
  return servingModel(engine.manifest, engine, tokenizer);
}

async function readJson(store: ModelStore, name: string): Promise<unknown> {
  const bytes = await store.get(name);
  if (!bytes) throw new ModelFormatError(`the model store has no ${name}`);
  return JSON.parse(new TextDecoder().decode(bytes));
}
