/**
 * Hugging Face PaliGemma checkpoint → `model-shards/<id>/`: one ONNX graph + one weight file per stage (MLP-part
 * stages: the weight file only), the tokenizer, and `manifest.json` describing it all (see shared/model/manifest.ts),
 * with each stage's resident-size estimate (shared/model/stage-memory.ts).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { Checkpoint } from "./checkpoint/checkpoint.ts";
import { buildVisionStage } from "./graphs/vision.ts";
import { buildDecoderStage } from "./graphs/decoder.ts";
import { buildHeadStage } from "./graphs/head.ts";
import type { TensorSource } from "./graphs/tensors.ts";
import { hfNames } from "./checkpoint/names.ts";
import type { WeightFormat } from "./graphs/ops.ts";
import { planStages, type PlannedStage } from "./plan.ts";
import { describePart, planByMemory } from "./plan-memory.ts";
import { writeMlpPart } from "./mlp-part.ts";
import { sha256, WeightFile } from "./weight-file.ts";
import { MANIFEST_FORMAT, MANIFEST_VERSION, PREPROCESS_VERSION, parseManifest, type Manifest } from "../shared/model/manifest.ts";
import type { ModelConfig } from "../shared/model/config.ts";
import { DEFAULT_STAGE_BUDGET, estimateStage, type StageBudget } from "../shared/model/stage-memory.ts";
import type { WeightDtype } from "../shared/model/weights.ts";

export interface ConvertOptions {
  readonly dtype: WeightDtype;
  /** Weight-file budget per stage in MB (10^6 bytes); null/absent: no such budget. */
  readonly maxShardMb?: number | null;
  /** Resident-size budget per stage in MB (shared/model/stage-memory.ts); exclusive with maxShardMb. */
  readonly maxStageMb?: number | null;
  /** What each stage must hold besides its weights (default DEFAULT_STAGE_BUDGET); recorded in the manifest. */
  readonly stageBudget?: Partial<StageBudget>;
  /** Cut every decoder layer's MLP into this many parts whatever the budget (tests; hidden CLI --mlp-parts). */
  readonly mlpParts?: number;
  /** Every part of a cut layer holds the attention; the layer is one hop (CLI --parallel-parts; plan-memory.ts). */
  readonly parallelParts?: boolean;
  /** A cut layer gets at least this many parts (CLI --min-mlp-parts). */
  readonly minMlpParts?: number;
  /** At least this many head shards (CLI --head-shards). */
  readonly headShards?: number;
  readonly blockSize?: number; // int8/int4 block along K (default 32)
  readonly accuracyLevel?: number; // MatMulNBits accuracy_level (default 0: float32 compute)
  readonly id?: string; // default: the output folder's name
  readonly headRowsPerStage?: number; // caps vocabulary rows per head stage (tests force a vocabulary split)
  readonly onProgress?: (line: string) => void;
}

export async function convert(hfDir: string, outDir: string, opts: ConvertOptions): Promise<Manifest> {
  const ckpt = await Checkpoint.open(hfDir);
  try {
    return await convertOpen(ckpt, outDir, opts);
  } finally {
    ckpt.close();
  }
}

async function convertOpen(ckpt: Checkpoint, outDir: string, opts: ConvertOptions): Promise<Manifest> {
  const config = ckpt.config;
  const fmt: WeightFormat = { dtype: opts.dtype, blockSize: opts.blockSize ?? 32, accuracyLevel: opts.accuracyLevel ?? 0 };
  const budget = stageBudget(opts.stageBudget);
  const maxStageBytes = opts.maxStageMb == null ? null : Math.floor(opts.maxStageMb * 1e6);
  const plan = planFor(config, fmt, opts, budget, maxStageBytes);
  const progress = opts.onProgress ?? (() => {});
  mkdirSync(outDir, { recursive: true });

  const files: Manifest["files"] = {};
  const tensors: Manifest["tensors"] = {};
  const stages: Manifest["stages"] = [];
  const counters = { vision: 0, decoder: 0, head: 0 };
  const parts = new Map<number, number>(); // layer → parts written
  for (const [n, stage] of plan.entries()) {
    const part = stage.mlp !== undefined;
    const name = part ? `decoder-l${stage.from}.${setNext(parts, stage.from)}` : `${stage.kind}-${counters[stage.kind]++}`;
    const estimate = estimateStage(config, fmt, stage, budget);
    progress(`[${n + 1}/${plan.length}] ${name}: ${describe(stage)}, ~${(estimate.residentBytes / 1e6).toFixed(1)} MB resident`);
    const weights = new WeightFile(outDir, `${name}.bin`);
    const graph = part ? null : await buildStage(ckpt, config, stage, fmt, weights);
    if (part) writeMlpPart(config, { from: stage.from, mlp: stage.mlp!, attention: stage.attention !== false }, await preload(ckpt, decoderNames(config, stage)), fmt, weights);
    if (graph) {
      writeFileSync(join(outDir, `${name}.onnx`), graph);
      files[`${name}.onnx`] = { bytes: graph.byteLength, sha256: sha256(graph) };
    }
    files[weights.name] = weights.finish();
    tensors[weights.name] = weights.entries;
    const where = part ? { mlp: stage.mlp, attention: stage.attention !== false, ...(stage.cut ? { cut: stage.cut } : {}) } : { graph: `${name}.onnx` };
    stages.push({ name, kind: stage.kind, from: stage.from, to: stage.to, ...where, weights: weights.name, estimate });
  }

  const manifest = {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    id: opts.id ?? basename(resolve(outDir)),
    config,
    weights: fmt,
    preprocess: { version: PREPROCESS_VERSION, ...ckpt.preprocessor },
    softTokens: { tokens: config.imageTokens, dim: config.projectionDim, dtype: "float32", scaling: "projector_output" },
    tokenizer: copyTokenizer(ckpt, outDir, files),
    stages,
    tensors,
    files,
    budget: { maxStageBytes, ...budget },
  };
  const parsed = parseManifest(manifest); // never write a manifest we would refuse to load
  writeFileSync(join(outDir, "manifest.json"), JSON.stringify(manifest, null, 1) + "\n");
  progress(`wrote ${outDir}/manifest.json (${stages.length} stages, ${Object.keys(files).length} files)`);
  return parsed;
}

function planFor(c: ModelConfig, fmt: WeightFormat, opts: ConvertOptions, budget: StageBudget, maxStageBytes: number | null): PlannedStage[] {
  const memoryOnly = opts.mlpParts !== undefined || opts.parallelParts || opts.minMlpParts !== undefined || opts.headShards !== undefined;
  if (opts.maxShardMb != null && (opts.maxStageMb != null || memoryOnly)) {
    throw new Error("--max-shard-mb (weight-file bytes) cannot be combined with --max-stage-mb, --mlp-parts, --parallel-parts, --min-mlp-parts or --head-shards (resident bytes)");
  }
  if (opts.maxShardMb != null) return planStages(c, fmt, Math.floor(opts.maxShardMb * 1e6), opts.headRowsPerStage);
  if (maxStageBytes === null && !memoryOnly) return planStages(c, fmt, null, opts.headRowsPerStage);
  const { mlpParts, parallelParts, minMlpParts, headShards } = opts;
  return planByMemory(c, fmt, { maxStageBytes, budget, mlpParts, headRows: opts.headRowsPerStage, parallelParts, minMlpParts, headShards });
}

function stageBudget(given: Partial<StageBudget> = {}): StageBudget {
  const b = { ...DEFAULT_STAGE_BUDGET, ...given };
  for (const [k, v] of Object.entries(b)) {
    const min = k === "adapterBytes" ? 0 : 1; // no room for adapters is the default
    if (!Number.isInteger(v) || v < min) throw new Error(`stage budget ${k} must be an integer ≥ ${min}, got ${v}`);
  }
  if (b.prefillRows > b.context) throw new Error(`--stage-prefill-rows ${b.prefillRows} is more than --stage-context ${b.context}`);
  return b;
}

function setNext(m: Map<number, number>, key: number): number {
  const n = m.get(key) ?? 0;
  m.set(key, n + 1);
  return n;
}

function describe(s: PlannedStage): string {
  if (s.mlp) return describePart(s).replace(/^decoder /, "");
  const what = s.kind === "head" ? "vocabulary rows" : "layers";
  return s.to - s.from === 1 ? `${what.replace(/s$/, "").replace("rows", "row")} ${s.from}` : `${what} ${s.from}–${s.to - 1}`;
}

async function buildStage(ckpt: Checkpoint, config: ModelConfig, s: PlannedStage, fmt: WeightFormat, sink: WeightFile): Promise<Uint8Array> {
  if (s.kind === "vision") {
    const wb = [hfNames.patchEmbedding, hfNames.postLayernorm, hfNames.projector];
    for (let i = s.from; i < s.to; i++) wb.push(...Object.values(hfNames.visionLayer(i)));
    const names = [hfNames.positionEmbedding, ...wb.flatMap((t) => [t.weight, t.bias])];
    return buildVisionStage(config, s, await preload(ckpt, names), fmt, sink);
  }
  if (s.kind === "decoder") return buildDecoderStage(config, s, await preload(ckpt, decoderNames(config, s)), fmt, sink);
  const table = ckpt.tensorNames().includes(hfNames.lmHead) ? hfNames.lmHead : hfNames.embedTokens;
  const all = await ckpt.read(table);
  const h = config.text.hidden;
  const rows = all.subarray(s.from * h, s.to * h);
  return buildHeadStage(config, s, rows, await ckpt.read(hfNames.finalNorm), fmt, sink);
}

/** Checkpoint names of decoder layers [from, to). */
function decoderNames(config: ModelConfig, s: PlannedStage): string[] {
  const names: string[] = [];
  for (let i = s.from; i < s.to; i++) {
    const layer = hfNames.textLayer(i);
    const gemma2Only = [layer.preFeedforwardLayernorm, layer.postFeedforwardLayernorm];
    names.push(...Object.values(layer).filter((n) => config.text.family === "gemma2" || !gemma2Only.includes(n)));
  }
  return names;
}

/** Reads the named tensors (those the checkpoint has) into a synchronous source. */
async function preload(ckpt: Checkpoint, names: string[]): Promise<TensorSource> {
  const present = new Set(ckpt.tensorNames());
  const map = new Map<string, Float32Array>();
  for (const n of names) if (present.has(n)) map.set(n, await ckpt.read(n));
  return {
    get(name) {
      const t = map.get(name);
      if (!t) throw new Error(`tensor ${name} was not loaded for this stage`);
      return t;
    },
  };
}

function copyTokenizer(ckpt: Checkpoint, outDir: string, files: Manifest["files"]): Manifest["tokenizer"] {
  if (!ckpt.tokenizerJsonPath) return null;
  const add = (src: string, name: string) => {
    const bytes = readFileSync(src);
    writeFileSync(join(outDir, name), bytes);
    files[name] = { bytes: bytes.byteLength, sha256: sha256(bytes) };
    return bytes;
  };
  const json = JSON.parse(add(ckpt.tokenizerJsonPath, "tokenizer.json").toString("utf8"));
  const configFile = ckpt.tokenizerConfigPath ? (add(ckpt.tokenizerConfigPath, "tokenizer_config.json"), "tokenizer_config.json") : null;
  return { file: "tokenizer.json", configFile, size: tokenizerSize(json) };
}

/** Number of ids the tokenizer knows: max id over the vocabulary and added tokens, plus one. */
function tokenizerSize(json: { model?: { vocab?: Record<string, number> | [string, number][] }; added_tokens?: { id: number }[] }): number {
  let max = -1;
  const vocab = json.model?.vocab ?? {};
  const ids = Array.isArray(vocab) ? vocab.map((_, i) => i) : Object.values(vocab);
  for (const id of ids) max = Math.max(max, id);
  for (const t of json.added_tokens ?? []) max = Math.max(max, t.id);
  return max + 1;
}
