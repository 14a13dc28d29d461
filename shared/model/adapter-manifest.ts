/**
 * A converted LoRA adapter (`<model>/adapters/<name>/adapter.json`): a versioned, validated description of the
 * low-rank factors of one fine-tune of a base model, cut into the base model's stages so that each stage loads
 * only the factors of its own layers. Written by `convert-adapter` (converter/adapter/), listed in the base
 * model's manifest (`adapters`), parsed by every runtime before its files are read.
 *
 * Per adapted projection W[n, k] (module names as the converter names the base's matrices: `dec.l3.attn.q`,
 * `dec.l3.gate`, `vis.l0.q`, `proj`), a stage's file holds `<module>.lora_a` float32[r, k'] and
 * `<module>.lora_b` float32[n', r], PEFT's lora_A / lora_B as trained (not scaled); the runtime adds
 * `scale · B(A x)` to W x. An MLP-part stage holds its rows of gate/up's B and its columns of down's A, so the
 * parts' sum is the whole update.
 */
import { z } from "zod";
import { ModelFormatError } from "../errors.ts";
import { parseOrRefuse } from "./parse.ts";

export const ADAPTER_FORMAT = "paligemma-edge/adapter";
export const ADAPTER_VERSION = 1;
/** Adapter names: what follows `<base>:` in a model id, and a folder name. */
export const ADAPTER_NAME = /^[A-Za-z0-9._-]{1,64}$/;

const int = z.number().int().positive();
const count = z.number().int().nonnegative();

const Module = z.object({
  /** The base matrix it adapts (`dec.l0.attn.q`, `vis.l2.fc1`, `proj`). */
  name: z.string(),
  /** The PEFT module name it came from (after `base_model.model.`). */
  source: z.string(),
  rank: int,
  alpha: z.number(),
  /** alpha / rank, or alpha / sqrt(rank) for rsLoRA. */
  scale: z.number(),
  /** W's output and input features. */
  out: int,
  in: int,
});

const Stage = z.object({
  /** The base model's stage this file belongs to. */
  stage: z.string(),
  weights: z.string(),
  modules: z.array(z.string()),
});

const TensorEntry = z.object({
  name: z.string(),
  dtype: z.literal("FLOAT"),
  dims: z.array(count),
  offset: count,
  length: count,
});

const AdapterSchema = z.object({
  format: z.literal(ADAPTER_FORMAT),
  version: z.literal(ADAPTER_VERSION),
  name: z.string().regex(ADAPTER_NAME),
  /** The base model's id. */
  base: z.string(),
  /** What adapter_config.json said (for the record). */
  peft: z.object({ r: int, lora_alpha: z.number(), use_rslora: z.boolean(), target_modules: z.union([z.array(z.string()), z.string()]) }),
  modules: z.array(Module).min(1),
  stages: z.array(Stage),
  tensors: z.record(z.string(), z.array(TensorEntry)),
  files: z.record(z.string(), z.object({ bytes: count, sha256: z.string().regex(/^[0-9a-f]{64}$/) })),
  /** Bytes of all factors as float32 (what the adapter costs in memory, over every stage). */
  factorBytes: count,
});

/** The base manifest's entry for one adapter. */
export const AdapterListing = z.object({
  name: z.string().regex(ADAPTER_NAME),
  /** Its adapter.json, relative to the model folder. */
  manifest: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  factorBytes: count,
  /** Whether it adapts the vision tower or the projector (then its soft tokens differ from the base's). */
  vision: z.boolean(),
});

export type AdapterManifest = z.infer<typeof AdapterSchema>;
export type AdapterModule = z.infer<typeof Module>;
export type AdapterListing = z.infer<typeof AdapterListing>;

/** Parses and checks an adapter manifest; throws ModelFormatError naming the first problem. */
export function parseAdapterManifest(json: unknown): AdapterManifest {
  const m = parseOrRefuse(AdapterSchema, json, "adapter.json");
  const names = new Set(m.modules.map((x) => x.name));
  for (const s of m.stages) {
    if (!m.files[s.weights] || !m.tensors[s.weights]) throw new ModelFormatError(`adapter.json: stage ${s.stage} names ${s.weights}, which is not in files and tensors`);
    for (const mod of s.modules) if (!names.has(mod)) throw new ModelFormatError(`adapter.json: stage ${s.stage} lists module ${mod}, which modules does not describe`);
  }
  return Object.freeze(m);
}

/** Whether a module name is part of the vision tower or the projector. */
export function isVisionModule(name: string): boolean {
  return name.startsWith("vis.") || name === "proj";
}
