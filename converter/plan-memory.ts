/**
 * Plans stages by resident size (`--max-stage-mb`): what a stage holds once loaded, as shared/model/stage-memory.ts
 * estimates it. Whole layers are packed together while they fit (vision, decoder); a decoder layer too big on its
 * own is cut by its MLP's intermediate dimension into the fewest parts that fit (at least `minMlpParts`; the first
 * part also runs the attention, or, with `parallelParts`, every part does: replicated attention weights and a KV
 * cache in each, so the layer is one hop); the head is cut into equal vocabulary ranges (at least `headShards`).
 */
import type { ModelConfig } from "../shared/model/config.ts";
import { estimateStage, mlpPartUnit, type StageBudget, type StageEstimate, type StageSpec, type StageWeights } from "../shared/model/stage-memory.ts";
import type { PlannedStage } from "./plan.ts";

export interface MemoryPlanOptions {
  /** Resident bytes per stage; null = no budget (one stage per part, unless mlpParts). */
  readonly maxStageBytes: number | null;
  readonly budget: StageBudget;
  /** Cut every decoder layer's MLP into this many parts regardless of size (tests force a split). */
  readonly mlpParts?: number;
  /** Caps vocabulary rows per head stage (tests force a vocabulary split). */
  readonly headRows?: number;
  /** Every part of a cut layer holds the layer's attention and all run at once on its input (manifest `cut: "parallel"`). */
  readonly parallelParts?: boolean;
  /** A layer that is cut gets at least this many parts (more, smaller parts: more isolates, less time per hop). */
  readonly minMlpParts?: number;
  /** At least this many head shards (they run in parallel: smaller shards, a shorter slowest one). */
  readonly headShards?: number;
}

export function planByMemory(c: ModelConfig, w: StageWeights, o: MemoryPlanOptions): PlannedStage[] {
  const est = (s: StageSpec) => estimateStage(c, w, s, o.budget);
  return [...packLayers("vision", c.vision.layers, est, o), ...planDecoder(c, w, est, o), ...planHead(c, est, o)];
}

type Estimator = (s: StageSpec) => StageEstimate;

function planned(s: StageSpec, est: Estimator): PlannedStage {
  return { ...s, bytes: est(s).residentBytes };
}

/** Whole layers, packed greedily while the stage fits. */
function packLayers(kind: "vision" | "decoder", layers: number, est: Estimator, o: MemoryPlanOptions, first = 0, end = layers): PlannedStage[] {
  const max = o.maxStageBytes;
  const stages: PlannedStage[] = [];
  let from = first;
  for (let i = first; i < end; i++) {
    const alone = est({ kind, from: i, to: i + 1 });
    if (max !== null && alone.residentBytes > max) throw new Error(`${kind} layer ${i} needs ${terms(alone)}, over --max-stage-mb ${mb(max)}`);
    if (max !== null && i > from && est({ kind, from, to: i + 1 }).residentBytes > max) {
      stages.push(planned({ kind, from, to: i }, est));
      from = i;
    }
  }
  if (end > first) stages.push(planned({ kind, from, to: end }, est));
  return stages;
}

/** Runs of layers that fit whole are packed; every other layer is cut into MLP parts. */
function planDecoder(c: ModelConfig, w: StageWeights, est: Estimator, o: MemoryPlanOptions): PlannedStage[] {
  const layers = c.text.layers;
  const max = o.maxStageBytes;
  const fits = (l: number) => o.mlpParts === undefined && (max === null || est({ kind: "decoder", from: l, to: l + 1 }).residentBytes <= max);
  const stages: PlannedStage[] = [];
  let run = 0; // first layer of the current run of whole layers
  for (let l = 0; l <= layers; l++) {
    if (l < layers && fits(l)) continue;
    stages.push(...packLayers("decoder", layers, est, o, run, l));
    if (l < layers) stages.push(...cutLayer(c, w, est, o, l));
    run = l + 1;
  }
  return stages;
}

/** The parts of decoder layer `l`: MLP rows cut at multiples of mlpPartUnit, the attention in the first part. */
function cutLayer(c: ModelConfig, w: StageWeights, est: Estimator, o: MemoryPlanOptions, l: number): PlannedStage[] {
  const size = c.text.intermediate;
  const unit = mlpPartUnit(w);
  const units = Math.ceil(size / unit);
  const part = (from: number, to: number): StageSpec => ({
    kind: "decoder",
    from: l,
    to: l + 1,
    mlp: { from, to: Math.min(size, to) },
    attention: o.parallelParts === true || from === 0,
    ...(o.parallelParts ? { cut: "parallel" as const } : {}),
  });
  const max = o.maxStageBytes;
  /** `n` parts of near-equal units, each checked against the budget. */
  const equal = (n: number, flag: string): PlannedStage[] => {
    if (!Number.isInteger(n) || n < 1 || n > units) throw new Error(`${flag} must be 1…${units} (${unit}-row units of ${size}), got ${n}`);
    const stages: PlannedStage[] = [];
    let at = 0;
    for (let p = 0; p < n; p++) {
      const take = Math.floor(units / n) + (p < units % n ? 1 : 0);
      const s = part(at * unit, (at += take) * unit);
      const e = est(s);
      if (max !== null && e.residentBytes > max) throw new Error(`${describePart(s)} needs ${terms(e)}, over --max-stage-mb ${mb(max)}`);
      stages.push({ ...s, bytes: e.residentBytes });
    }
    return stages;
  };
  if (o.mlpParts !== undefined) return equal(o.mlpParts, "--mlp-parts");
  if (max === null) throw new Error("cutLayer needs a budget");
  const greedy = (limit: number) => greedyParts(units, unit, (from, to) => est(part(from, to)).residentBytes, limit);
  const fewest = greedy(max);
  if (fewest === null) {
    const whole = est({ kind: "decoder", from: l, to: l + 1 });
    const smallest = part(0, unit);
    throw new Error(
      `decoder layer ${l} needs ${terms(whole)}, over --max-stage-mb ${mb(max)}; cut into MLP parts of ${unit}-row units, ` +
        `${describePart(smallest)} alone still needs ${terms(est(smallest))}`,
    );
  }
  if (o.minMlpParts !== undefined && o.minMlpParts > fewest.length) return equal(o.minMlpParts, "--min-mlp-parts");
  // As many parts as the greedy cut needs, balanced: the smallest limit that still cuts into that many.
  let lo = 0;
  let hi = max;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    const cut = greedy(mid);
    if (cut !== null && cut.length <= fewest.length) hi = mid;
    else lo = mid;
  }
  return greedy(hi)!.map(([from, to]) => planned(part(from, to), est));
}

/**
 * Cuts units [0, units) into parts, each taking the most units whose size stays ≤ limit (sizes grow with the
 * rows, so this gives the fewest parts); null when one unit does not fit. Returns row ranges.
 */
function greedyParts(units: number, unit: number, size: (from: number, to: number) => number, limit: number): [number, number][] | null {
  const parts: [number, number][] = [];
  for (let at = 0; at < units; ) {
    let lo = 0; // most units known to fit
    let hi = units - at;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (size(at * unit, (at + mid) * unit) <= limit) lo = mid;
      else hi = mid - 1;
    }
    if (lo === 0) return null;
    parts.push([at * unit, (at += lo) * unit]);
  }
  return parts;
}

/** Equal vocabulary ranges, as few as fit. */
function planHead(c: ModelConfig, est: Estimator, o: MemoryPlanOptions): PlannedStage[] {
  const vocab = c.text.vocab;
  const max = o.maxStageBytes;
  const head = (from: number, to: number): StageSpec => ({ kind: "head", from, to });
  let most = vocab; // rows one stage may hold
  if (max !== null) {
    const one = est(head(0, 1));
    if (one.residentBytes > max) throw new Error(`the LM head needs ${terms(one)} for a single vocabulary row, over --max-stage-mb ${mb(max)}`);
    let lo = 1;
    let hi = vocab;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (est(head(0, mid)).residentBytes <= max) lo = mid;
      else hi = mid - 1;
    }
    most = lo;
  }
  most = Math.min(most, o.headRows ?? vocab);
  if (o.headShards !== undefined && !(Number.isInteger(o.headShards) && o.headShards >= 1 && o.headShards <= vocab)) throw new Error(`--head-shards must be 1…${vocab}, got ${o.headShards}`);
  const rows = Math.ceil(vocab / Math.max(Math.ceil(vocab / most), o.headShards ?? 1));
  const stages: PlannedStage[] = [];
  for (let from = 0; from < vocab; from += rows) stages.push(planned(head(from, Math.min(vocab, from + rows)), est));
  return stages;
}

/** "layer 3 attention + MLP rows [0, 8192)" */
export function describePart(s: StageSpec): string {
  const rows = s.mlp ? `MLP rows [${s.mlp.from}, ${s.mlp.to})` : "MLP";
  return `decoder layer ${s.from} ${s.attention === false ? "" : "attention + "}${rows}`;
}

function terms(e: StageEstimate): string {
  return `${mb(e.residentBytes)} MB resident (weights ${mb(e.weightBytes)}, KV cache ${mb(e.cacheBytes)}, scratch ${mb(e.scratchBytes)}, code ${mb(e.codeBytes)}${e.adapterBytes ? `, adapters ${mb(e.adapterBytes)}` : ""})`;
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(2);
}
