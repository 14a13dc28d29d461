/**
 * The pipeline bench's model: tokens/s and time to first token of a model served as a pipeline, from measured
 * per-stage times and a hop latency. Pure arithmetic over what bench/pipeline/run.ts measured, so the formulas
 * are tested on their own (test/bench/pipeline-model.test.ts):
 *
 *   one token of B sessions (each stage steps the B rows in one call, as `step(batch)` does; its measured time
 *   t_s(B)): L(B) = Σ over the decoder's hops [h + t_first(B) + (h + max over the other parts t(B), for a cut
 *   layer)] + h + max over head shards t(B) + c (the coordinator: assembling the logits, sampling);
 *   tokens/s per session = 1000 / L(B); aggregate = B · 1000 / L(B).
 *
 *   time to first token, idle pipeline: Σ vision stages (h + t) + h (the prompt's embeddings) + Σ decoder hops
 *   (h + prefill first + (h + max prefill of the other parts)) + h + head(1) + c; with B prompts arriving
 *   together the prefills queue at the slowest stage: TTFT(B) = TTFT(1) + (B − 1) · max stage prefill.
 */

/** One stage's measured costs, in ms. */
export interface StageCost {
  readonly name: string;
  readonly kind: "vision" | "decoder" | "head";
  /** Decoder: the prompt's prefill; vision: one image's rows; head: 0. */
  readonly prefillMs: number;
  /** Per batch size B: one batched step (decoder) or scoring B rows (head). */
  readonly stepMs: Readonly<Record<number, number>>;
}

/** The stages as the coordinator calls them. */
export interface PipelineCosts {
  readonly vision: readonly StageCost[];
  /** Decoder hops in order: a stage of whole layers, or a cut layer's attention part and its other parts. */
  readonly decoder: readonly { readonly first: StageCost; readonly rest: readonly StageCost[] }[];
  readonly head: readonly StageCost[];
  /** The coordinator's own time per token (logits assembly, sampling), ms. */
  readonly coordinatorMs: number;
}

/** One modelled operating point. */
export interface PipelinePoint {
  readonly hop_ms: number;
  readonly sessions: number;
  readonly tokens_per_s_per_session: number;
  readonly aggregate_tokens_per_s: number;
  readonly ttft_s: number;
}

function at(s: StageCost, b: number): number {
  const t = s.stepMs[b];
  if (t === undefined) throw new Error(`stage ${s.name} has no measured step for ${b} sessions`);
  return t;
}

/** Per-token latency (ms) of B sessions stepping together, at hop latency `hop` ms. */
export function tokenLatencyMs(p: PipelineCosts, hop: number, b: number): number {
  let ms = 0;
  for (const g of p.decoder) {
    ms += hop + at(g.first, b);
    if (g.rest.length) ms += hop + Math.max(...g.rest.map((s) => at(s, b)));
  }
  return ms + hop + Math.max(...p.head.map((s) => at(s, b))) + p.coordinatorMs;
}

/** Time to first token (ms) of one prompt on an idle pipeline. */
export function firstTokenMs(p: PipelineCosts, hop: number): number {
  let ms = p.vision.reduce((a, s) => a + hop + s.prefillMs, 0) + hop;
  for (const g of p.decoder) {
    ms += hop + g.first.prefillMs;
    if (g.rest.length) ms += hop + Math.max(...g.rest.map((s) => s.prefillMs));
  }
  return ms + hop + Math.max(...p.head.map((s) => at(s, 1))) + p.coordinatorMs;
}

/** The operating point of B sessions at hop `hop` ms. */
export function pipelinePoint(p: PipelineCosts, hop: number, sessions: number): PipelinePoint {
  const l = tokenLatencyMs(p, hop, sessions);
  const slowest = Math.max(...[...p.vision, ...p.decoder.flatMap((g) => [g.first, ...g.rest])].map((s) => s.prefillMs));
  const ttft = firstTokenMs(p, hop) + (sessions - 1) * slowest;
  const round = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;
  return { hop_ms: hop, sessions, tokens_per_s_per_session: round(1000 / l, 2), aggregate_tokens_per_s: round((sessions * 1000) / l, 2), ttft_s: round(ttft / 1000, 3) };
}
