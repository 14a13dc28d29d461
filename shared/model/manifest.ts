/**
 * The model manifest: a versioned, validated description of a converted model folder (`model-shards/<id>/`).
 * Written by the converter, parsed once by every runtime before any file is used.
 */
import { z } from "zod";
import { freezeConfig, type ModelConfig } from "./config.ts";
import { WEIGHT_DTYPES } from "./weights.ts";
import { ModelFormatError } from "../errors.ts";
import { AdapterListing } from "./adapter-manifest.ts";
import { parseOrRefuse } from "./parse.ts";

export const MANIFEST_FORMAT = "paligemma-edge/model";
export const MANIFEST_VERSION = 1;
/** Bumped whenever preprocessing changes numerically; part of every soft-token cache key. */
export const PREPROCESS_VERSION = 1;

const int = z.number().int().positive();
const nullableNumber = z.number().positive().nullable();

const ConfigSchema = z.object({
  variant: z.enum(["paligemma", "paligemma2"]),
  vision: z.object({
    imageSize: int,
    patchSize: int,
    hidden: int,
    layers: int,
    heads: int,
    intermediate: int,
    layerNormEps: z.number().positive(),
  }),
  text: z.object({
    family: z.enum(["gemma", "gemma2"]),
    hidden: int,
    layers: int,
    heads: int,
    kvHeads: int,
    headDim: int,
    intermediate: int,
    vocab: int,
    rmsNormEps: z.number().positive(),
    ropeTheta: z.number().positive(),
    queryPreAttnScalar: z.number().positive(),
    attnLogitSoftcap: nullableNumber,
    finalLogitSoftcap: nullableNumber,
    slidingWindow: int.nullable(),
  }),
  projectionDim: int,
  imageTokens: int,
  tokens: z.object({ bos: z.number().int(), eos: z.number().int(), pad: z.number().int(), image: z.number().int() }),
});

const TensorEntry = z.object({
  name: z.string(),
  dtype: z.enum(["FLOAT", "FLOAT16", "UINT8", "INT8", "INT32", "INT64", "BOOL"]),
  dims: z.array(z.number().int().nonnegative()),
  offset: z.number().int().nonnegative(),
  length: z.number().int().nonnegative(),
});

const count = z.number().int().nonnegative();

/** What a stage holds once loaded, by term (shared/model/stage-memory.ts). */
const Estimate = z.object({ residentBytes: count, weightBytes: count, cacheBytes: count, scratchBytes: count, codeBytes: count, adapterBytes: count.optional() });

const Stage = z.object({
  name: z.string(),
  kind: z.enum(["vision", "decoder", "head"]),
  /** Layers [from, to) for vision/decoder stages; vocabulary rows [from, to) for head stages. */
  from: z.number().int().nonnegative(),
  to: z.number().int().positive(),
  /** Absent only for MLP-part stages, whose math no graph expresses (only the kernel engine runs them). */
  graph: z.string().optional(),
  weights: z.string(),
  /** Decoder parts of one layer: the MLP's intermediate rows [from, to) this stage computes; absent = all. */
  mlp: z.object({ from: count, to: int }).optional(),
  /** Decoder parts: false for an MLP-only part; absent = true. */
  attention: z.boolean().optional(),
  /**
   * Decoder parts: how the parts of the cut layer run. Absent or "sequential": the first part holds the attention
   * and the others take its output (two hops). "parallel": every part holds the attention (replicated weights, a
   * KV cache each) and all take the layer's input at once (one hop); set on every part of the layer.
   */
  cut: z.enum(["sequential", "parallel"]).optional(),
  estimate: Estimate.optional(),
});

/** The parameters the stage estimates were made for; maxStageBytes null when stages were not cut by it. */
/** `adapterBytes`: the adapter cache budget each vision/decoder estimate includes (absent in older manifests: 0). */
const Budget = z.object({ maxStageBytes: int.nullable(), sessions: int, context: int, prefillRows: int, adapterBytes: count.optional() });

/**
 * Optional: big_vision's VQ-VAE mask decoder (`vae-oid.npz`), converted by `convert-vae` into one weight file
 * whose tensors are listed under `tensors[file]` with the npz's key names, every convolution weight packed as
 * [kh, kw, in, out] ("hwio"; shared/masks/vae-weights.ts). Manifests without it are valid: masks stay null.
 */
const Vae = z.object({
  file: z.string(),
  layout: z.literal("hwio"),
  /** Codebook rows and width ([128, 512] in vae-oid.npz). */
  codes: int,
  dim: int,
  /** Side of the decoded mask (64). */
  maskSize: int,
  /** The npz it came from: file name and sha256. */
  source: z.object({ name: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
});

const ManifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  version: z.literal(MANIFEST_VERSION),
  id: z.string().regex(/^[A-Za-z0-9._-]+$/),
  config: ConfigSchema,
  weights: z.object({
    dtype: z.enum(WEIGHT_DTYPES as ["fp32", "fp16", "int8", "int4"]),
    blockSize: int,
    accuracyLevel: z.number().int().min(0).max(4),
  }),
  preprocess: z.object({
    version: z.number().int(),
    size: int,
    rescale: z.number().positive(),
    mean: z.tuple([z.number(), z.number(), z.number()]),
    std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]),
    resample: z.literal("bicubic"),
  }),
  softTokens: z.object({
    tokens: int,
    dim: int,
    dtype: z.literal("float32"),
    /** "projector_output": stored rows enter the decoder as they are (transformers' image_features × sqrt(H)). */
    scaling: z.literal("projector_output"),
  }),
  tokenizer: z.object({ file: z.string(), configFile: z.string().nullable(), size: int }).nullable(),
  stages: z.array(Stage).min(3),
  tensors: z.record(z.string(), z.array(TensorEntry)),
  files: z.record(z.string(), z.object({ bytes: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) })),
  vae: Vae.optional(),
  budget: Budget.optional(),
  /** LoRA adapters converted for this model (`convert-adapter`; shared/model/adapter-manifest.ts). */
  adapters: z.array(AdapterListing).optional(),
});

export type Manifest = Omit<z.infer<typeof ManifestSchema>, "config"> & { config: ModelConfig };
export type ManifestStage = z.infer<typeof Stage>;
export type TensorEntry = z.infer<typeof TensorEntry>;
export type ManifestVae = z.infer<typeof Vae>;
export type ManifestBudget = z.infer<typeof Budget>;
export type ManifestEstimate = z.infer<typeof Estimate>;

/** Parses and checks a manifest; throws ModelFormatError naming the first problem. */
export function parseManifest(json: unknown): Manifest {
  const m = parseOrRefuse(ManifestSchema, json, "manifest.json");
  for (const s of m.stages) {
    if (s.graph === undefined && !isMlpPart(s)) throw new ModelFormatError(`manifest.json: stage ${s.name} has no graph; only MLP-part decoder stages may lack one`);
    for (const f of [s.graph, s.weights]) if (f !== undefined && !m.files[f]) throw new ModelFormatError(`manifest.json: stage ${s.name} names ${f}, which is not in files`);
    if (s.from >= s.to) throw new ModelFormatError(`manifest.json: stage ${s.name} has an empty range [${s.from}, ${s.to})`);
    if ((s.mlp !== undefined || s.attention !== undefined) && s.kind !== "decoder") throw new ModelFormatError(`manifest.json: stage ${s.name}: only decoder stages have mlp or attention`);
    if (s.cut !== undefined && !isMlpPart(s)) throw new ModelFormatError(`manifest.json: stage ${s.name}: only the MLP parts of a cut decoder layer have a cut`);
    const e = s.estimate;
    if (e && e.residentBytes !== e.weightBytes + e.cacheBytes + e.scratchBytes + e.codeBytes + (e.adapterBytes ?? 0)) {
      throw new ModelFormatError(`manifest.json: stage ${s.name}: estimate.residentBytes is not the sum of its terms`);
    }
  }
  if (m.vae && !(m.files[m.vae.file] && m.tensors[m.vae.file])) {
    throw new ModelFormatError(`manifest.json: vae names ${m.vae.file}, which is not in files and tensors`);
  }
  checkCoverage(m.stages, "vision", m.config.vision.layers);
  checkDecoderCoverage(m);
  checkCoverage(m.stages, "head", m.config.text.vocab);
  return Object.freeze({ ...m, config: freezeConfig(m.config) });
}

/** Stages of one kind must tile [0, end) in order. */
function checkCoverage(stages: readonly ManifestStage[], kind: ManifestStage["kind"], end: number): void {
  let at = 0;
  for (const s of stages.filter((x) => x.kind === kind)) {
    if (s.from !== at) throw new ModelFormatError(`manifest.json: ${kind} stage ${s.name} starts at ${s.from}, expected ${at}`);
    at = s.to;
  }
  if (at !== end) throw new ModelFormatError(`manifest.json: ${kind} stages cover [0, ${at}), expected [0, ${end})`);
}

/**
 * Decoder stages tile the layers in order; a layer cut into MLP parts has consecutive one-layer stages whose MLP
 * rows tile [0, intermediate) in order, bounds on quantisation blocks; the first part computes the attention, and
 * so does every other one when the layer's cut is "parallel" (all its parts say so), none of them otherwise.
 */
function checkDecoderCoverage(m: z.infer<typeof ManifestSchema>): void {
  const size = m.config.text.intermediate;
  const blocked = m.weights.dtype === "int8" || m.weights.dtype === "int4";
  const bad = (s: ManifestStage, why: string) => new ModelFormatError(`manifest.json: decoder stage ${s.name} ${why}`);
  let at = 0; // next layer
  let row = size; // next MLP row of the layer being cut (size: none open)
  let cut: ManifestStage["cut"] = undefined; // the open layer's cut, as its first part names it
  for (const s of m.stages.filter((x) => x.kind === "decoder")) {
    const part = isMlpPart(s);
    const r = s.mlp ?? { from: 0, to: size };
    if (row < size) {
      if (!part || s.from !== at - 1) throw new ModelFormatError(`manifest.json: decoder layer ${at - 1}'s MLP parts cover rows [0, ${row}), expected [0, ${size})`);
      if (r.from !== row) throw bad(s, `starts at MLP row ${r.from}, expected ${row}`);
      if (s.cut !== cut) throw bad(s, `has cut ${s.cut ?? "(none)"}, but layer ${s.from}'s first part has ${cut ?? "(none)"}`);
      if (cut === "parallel" && s.attention === false) throw bad(s, `is a parallel part of layer ${s.from} and must compute its attention`);
      if (cut !== "parallel" && s.attention !== false) throw bad(s, `computes attention, but only the first part of layer ${s.from} may (its cut is sequential)`);
    } else {
      if (s.from !== at) throw bad(s, `starts at ${s.from}, expected ${at}`);
      if (part && r.from !== 0) throw bad(s, `is the first part of layer ${s.from} but starts at MLP row ${r.from}`);
      if (part && s.attention === false) throw bad(s, `is the first part of layer ${s.from} and must compute its attention`);
      cut = s.cut;
    }
    if (part) {
      if (s.to !== s.from + 1) throw bad(s, `is an MLP part over layers [${s.from}, ${s.to}); a part covers one layer`);
      if (r.from >= r.to || r.to > size) throw bad(s, `has MLP rows [${r.from}, ${r.to}), not inside [0, ${size})`);
      const bs = m.weights.blockSize;
      if (blocked && (r.from % bs !== 0 || (r.to % bs !== 0 && r.to !== size))) throw bad(s, `cuts a quantisation block: MLP rows [${r.from}, ${r.to}), block ${bs}`);
      row = r.to;
    }
    at = s.to;
  }
  if (row < size) throw new ModelFormatError(`manifest.json: decoder layer ${at - 1}'s MLP parts cover rows [0, ${row}), expected [0, ${size})`);
  if (at !== m.config.text.layers) throw new ModelFormatError(`manifest.json: decoder stages cover [0, ${at}), expected [0, ${m.config.text.layers})`);
}

/** A decoder stage that is one part of a layer cut by its MLP (no graph; only the kernel engine runs it). */
export function isMlpPart(s: Pick<ManifestStage, "kind" | "mlp" | "attention">): boolean {
  return s.kind === "decoder" && (s.mlp !== undefined || s.attention === false);
}

/** The stage's graph file; throws ModelFormatError for a stage without one (an MLP part). */
export function graphOf(s: ManifestStage): string {
  if (s.graph === undefined) throw new ModelFormatError(`stage ${s.name} is an MLP part: it has no graph, only the kernel engine runs it`);
  return s.graph;
}

export function stagesOf(m: Manifest, kind: ManifestStage["kind"]): ManifestStage[] {
  return m.stages.filter((s) => s.kind === kind);
}
