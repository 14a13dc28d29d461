/**
 * Runs an eval set through the HTTP API: each image is uploaded once, then each of its prompts is asked
 * greedily (temperature 0) without streaming, in one session per image so the server can reuse the image's
 * soft tokens. Images are worked on `concurrency` at a time; the prompts of one image run in order.
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { summarize, type EvalMetrics } from "../../shared/tasks/metrics.ts";
import { referenceMetrics, type EvalCase, type LoadedEvalSet } from "./cases.ts";
import { ApiClient, mediaTypeOf, type GenerateResult } from "./client.ts";
import { failedOutcome, scoreCase } from "./score.ts";

/** How to run. */
export interface EvalOptions {
  readonly baseUrl: string;
  /** Images in flight at once. */
  readonly concurrency: number;
  /** Token limit per answer (the reference used 24). */
  readonly maxTokens: number;
  /** Per-request timeout. */
  readonly timeoutMs?: number;
  /** Called after each case. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** A case whose answer differs from the reference model's recorded answer. */
export interface Disagreement {
  readonly image: string;
  readonly prefix: string;
  readonly answer: string;
  readonly reference: string;
}

/** The result of a run. */
export interface EvalReport {
  readonly base_url: string;
  readonly model: string | null;
  readonly cases: number;
  readonly images: number;
  readonly wall_ms: number;
  readonly metrics: EvalMetrics;
  /** The reference model's metrics recorded in the eval set, by kind (empty when it has none). */
  readonly reference: Record<string, Record<string, number>>;
  /** Answers identical to the recorded reference answers (cases that have one). */
  readonly agreement: { readonly same: number; readonly total: number };
  readonly disagreements: Disagreement[];
  /** Detect cases scored with the server's `detections` field, out of all detect cases answered. */
  readonly server_detections: { readonly used: number; readonly total: number };
  readonly finish_reasons: Record<string, number>;
  /** Means over answered cases of the server-reported timings. */
  readonly timings: { readonly time_to_first_token_ms: number | null; readonly tokens_per_second: number | null };
  readonly errors: { readonly image: string; readonly prefix?: string; readonly message: string }[];
  /** Requests sent again after the server's rate limit answered 429. */
  readonly rate_limit_retries: number;
}

/** Runs `items` through `work`, at most `limit` at a time. */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

const mean = (values: number[]): number | null => (values.length ? values.reduce((a, b) => a + b, 0) / values.length : null);

/** Runs the whole eval set against a server and scores it. Request failures are collected, not thrown. */
export async function runEval(loaded: LoadedEvalSet, options: EvalOptions): Promise<EvalReport> {
  const { set, dir } = loaded;
  const client = new ApiClient(options.baseUrl, options.timeoutMs);
  const started = performance.now();
  const runTag = crypto.randomUUID().slice(0, 8);
  const byImage = new Map<string, EvalCase[]>(set.images.map((i) => [i.image, []]));
  for (const c of set.cases) byImage.get(c.image)!.push(c);

  const answered: { c: EvalCase; result: GenerateResult }[] = [];
  const errors: EvalReport["errors"] = [];
  let done = 0;
  await pool(set.images, options.concurrency, async (image) => {
    const cases = byImage.get(image.image)!;
    let imageId: string;
    try {
      imageId = await client.uploadImage(await readFile(resolve(dir, image.image)), mediaTypeOf(image.image));
    } catch (err) {
      errors.push({ image: image.image, message: err instanceof Error ? err.message : String(err) });
      done += cases.length;
      options.onProgress?.(done, set.cases.length);
      return;
    }
    const session = `eval-${runTag}-${set.images.indexOf(image)}`;
    for (const c of cases) {
      try {
        const result = await client.generate({ imageId, prompt: c.prefix, maxTokens: options.maxTokens, session });
        answered.push({ c, result });
      } catch (err) {
        errors.push({ image: image.image, prefix: c.prefix, message: err instanceof Error ? err.message : String(err) });
      }
      options.onProgress?.(++done, set.cases.length);
    }
  });

  const images = new Map(set.images.map((i) => [i.image, i]));
  const order = new Map(set.cases.map((c, i) => [c, i]));
  answered.sort((a, b) => order.get(a.c)! - order.get(b.c)!);
  const outcomes = answered.map(({ c, result }) => scoreCase(c, images.get(c.image)!, result));
  const answeredCases = new Set(answered.map((a) => a.c));
  const failedOutcomes = set.cases.filter((c) => !answeredCases.has(c)).map(failedOutcome);
  const withReference = answered.filter(({ c }) => c.answer !== undefined);
  const disagreements = withReference
    .filter(({ c, result }) => result.text.trim() !== c.answer!.trim())
    .map(({ c, result }) => ({ image: c.image, prefix: c.prefix, answer: result.text, reference: c.answer! }));
  const finishReasons: Record<string, number> = {};
  for (const { result } of answered) finishReasons[result.finish_reason] = (finishReasons[result.finish_reason] ?? 0) + 1;
  const detect = outcomes.filter((o) => o.detection);
  const timings = answered.map(({ result }) => result.usage?.timings ?? {});
  return {
    base_url: options.baseUrl,
    model: answered[0]?.result.model ?? null,
    cases: set.cases.length,
    images: set.images.length,
    wall_ms: Math.round(performance.now() - started),
    metrics: summarize([...outcomes, ...failedOutcomes]),
    reference: referenceMetrics(set),
    agreement: { same: withReference.length - disagreements.length, total: set.cases.filter((c) => c.answer !== undefined).length },
    disagreements,
    server_detections: { used: detect.filter((o) => o.serverBoxes).length, total: detect.length },
    finish_reasons: finishReasons,
    timings: {
      time_to_first_token_ms: mean(timings.flatMap((t) => (typeof t.time_to_first_token_ms === "number" ? [t.time_to_first_token_ms] : []))),
      tokens_per_second: mean(timings.flatMap((t) => (typeof t.tokens_per_second === "number" && t.tokens_per_second > 0 ? [t.tokens_per_second] : []))),
    },
    errors,
    rate_limit_retries: client.retries,
  };
}
