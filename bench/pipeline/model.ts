/**
 * The pipeline bench's model: tokens/s and time to first token of a model served as a pipeline, from measured
 * per-stage times and a hop latency. Pure arithmetic over what bench/pipeline/run.ts measured, so the formulas
 * are tested on their own (test/bench/pipeline-model.test.ts):
 *
 *   one token of B sessions (each stage steps the B rows in one call, as `step(batch)` does; its measured time
 *   t_s(B)): L(B) = Σ over the decoder's hops [h + t_first(B) + (h + max over the other parts t(B), for a cut
 *   layer)] + h + max over head shards t(B) + c (the coordinator: assembling the logits, sampling); a layer cut
 *   into parallel parts (each holding the attention) is one hop: h + max over all its parts t(B);
 *   tokens/s per session = 1000 / L(B); aggregate = B · 1000 / L(B).
 *
 *   time to first token, idle pipeline: Σ vision stages (h + t) + h (the prompt's embeddings) + Σ decoder hops
 *   (h + prefill first + (h + max prefill of the other parts); a parallel cut h + max prefill over its parts)
 *   + h + head(1) + c; with B prompts arriving
 *   together the prefills queue at the slowest stage: TTFT(B) = TTFT(1) + (B − 1) · max stage prefill.
 *
 *   with r replicas of every decoder stage (sequence-parallel prefill, shared/pipeline/spread.ts): a stage of k
 *   attention layers takes k + 1 hops (its first layer's keys, then one attend per layer, every replica's call in
 *   the same hop) and 1/r of its prefill compute; an MLP part one hop and 1/r of its compute; a parallel cut's
 *   parts (one attention layer each) 2 hops together and the largest part's 1/r. The keys and values
 *   exchanged (≈ 0.55 MB per layer for 270 rows; 2.4 MB per vision layer) are taken as carried within the hop.
 *   Vision stages are spread the same way over r replicas (shared/pipeline/spread-vision.ts): a stage of k
 *   layers k + 1 hops and 1/r of its compute. A replica's share is measured where the bench timed it (spreadMs:
 *   a block of ⌈rows / r⌉ rows through the stage, attending over all rows), else taken as 1/r of the whole
 *   prefill. r = 1 is the single-call path above.
 */

/** One stage's measured costs, in ms. */
export interface StageCost {
  readonly name: string;
  readonly kind: "vision" | "decoder" | "head";
  /** Decoder: the prompt's prefill; vision: one image's rows; head: 0. */
  readonly prefillMs: number;
  /** Per batch size B: one batched step (decoder) or scoring B rows (head). */
  readonly stepMs: Readonly<Record<number, number>>;
  /** Per replica count r: one replica's measured share of the spread prefill or image (default prefillMs / r). */
  readonly spreadMs?: Readonly<Record<number, number>>;
  /** Decoder: the session rows the stage takes per pass of concurrent steps (default: all waiting; simulate.ts). */
  readonly maxBatch?: number;
  /** Layers holding attention in the stage (decoder or vision; 0 for an MLP-only part; default 1). */
  readonly attentionLayers?: number;
}

/** The stages as the coordinator calls them. */
export interface PipelineCosts {
  readonly vision: readonly StageCost[];
  /**
   * Decoder hops in order: a stage of whole layers, or a cut layer's attention part and its other parts (after
   * it; with `parallel`, every part holds the attention and all run in the same hop).
   */
  readonly decoder: readonly { readonly first: StageCost; readonly rest: readonly StageCost[]; readonly parallel?: boolean }[];
  readonly head: readonly StageCost[];
  /** The coordinator's own time per token (logits assembly, sampling), ms. */
  readonly coordinatorMs: number;
}

/** One modelled operating point. */
export interface PipelinePoint {
  readonly hop_ms: number;
  readonly sessions: number;
  /** Replicas of every decoder stage the prefill is spread over. */
  readonly replicas: number;
  readonly tokens_per_s_per_session: number;
  readonly aggregate_tokens_per_s: number;
  readonly ttft_s: number;
}

function at(s: StageCost, b: number): number {
  const t = s.stepMs[b];
  if (t === undefined) throw new Error(`stage ${s.name} has no measured step for ${b} sessions`);
  return t;
}

/** The hops of one decoded token, in order, each the stages called in parallel in it (the head's shards last). */
export function tokenHops(p: PipelineCosts): StageCost[][] {
  const hops: StageCost[][] = [];
  for (const g of p.decoder) {
    if (g.parallel) {
      hops.push([g.first, ...g.rest]); // every part holds the attention: all in one hop
      continue;
    }
    hops.push([g.first]);
    if (g.rest.length) hops.push([...g.rest]);
  }
  return [...hops, [...p.head]];
}

/** Per-token latency (ms) of B sessions stepping together, at hop latency `hop` ms. */
export function tokenLatencyMs(p: PipelineCosts, hop: number, b: number): number {
  let ms = 0;
  for (const stages of tokenHops(p)) ms += hop + Math.max(...stages.map((s) => at(s, b)));
  return ms + p.coordinatorMs;
}

/** Where the time to first token goes, ms: vision compute, decoder prefill compute, head + coordinator, and hops. */
export interface FirstTokenBudget {
  readonly vision_ms: number;
  readonly prefill_ms: number;
  readonly head_ms: number;
  readonly hops: number;
  readonly hops_ms: number;
}

/** Time to first token of one prompt on an idle pipeline, by part, with r replicas of every decoder stage. */
export function firstTokenBudget(p: PipelineCosts, hop: number, r = 1): FirstTokenBudget {
  const share = (s: StageCost) => (r === 1 ? s.prefillMs : (s.spreadMs?.[r] ?? s.prefillMs / r));
  const vision = p.vision.reduce((a, s) => a + share(s), 0);
  let hops = p.vision.reduce((a, s) => a + (r > 1 ? (s.attentionLayers ?? 1) + 1 : 1), 0) + 1; // the vision stages, then the prompt's embeddings
  let prefill = 0;
  for (const g of p.decoder) {
    const k = g.first.attentionLayers ?? 1;
    hops += r > 1 && k > 0 ? k + 1 : 1;
    if (g.parallel) {
      prefill += Math.max(...[g.first, ...g.rest].map(share));
      continue;
    }
    prefill += share(g.first);
    if (g.rest.length) {
      hops += 1;
      prefill += Math.max(...g.rest.map(share));
    }
  }
  hops += 1; // the head shards, in parallel
  return { vision_ms: vision, prefill_ms: prefill, head_ms: Math.max(...p.head.map((s) => at(s, 1))) + p.coordinatorMs, hops, hops_ms: hops * hop };
}

/** Time to first token (ms) of one prompt on an idle pipeline (r replicas of every decoder stage). */
export function firstTokenMs(p: PipelineCosts, hop: number, r = 1): number {
  const b = firstTokenBudget(p, hop, r);
  return b.vision_ms + b.prefill_ms + b.head_ms + b.hops_ms;
}

/** The operating point of B sessions at hop `hop` ms, prompts spread over `replicas` replicas of each decoder stage. */
export function pipelinePoint(p: PipelineCosts, hop: number, sessions: number, replicas = 1): PipelinePoint {
  const l = tokenLatencyMs(p, hop, sessions);
  const slowest = Math.max(...[...p.vision, ...p.decoder.flatMap((g) => [g.first, ...g.rest])].map((s) => (replicas === 1 ? s.prefillMs : (s.spreadMs?.[replicas] ?? s.prefillMs / replicas))));
  const ttft = firstTokenMs(p, hop, replicas) + (sessions - 1) * slowest;
  const round = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;
  return { hop_ms: hop, sessions, replicas, tokens_per_s_per_session: round(1000 / l, 2), aggregate_tokens_per_s: round((sessions * 1000) / l, 2), ttft_s: round(ttft / 1000, 3) };
}
