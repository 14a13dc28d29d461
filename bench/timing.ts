/**
 * Timing helpers shared by every runtime. The same code runs inside workerd (bench/workerd/worker.ts), so it
 * imports nothing from Node.
 *
 * A graph is loaded on every runtime, warmed up and calibrated, then timed in rounds: each round takes one
 * sample on each runtime in turn, so background load on a shared machine hits all runtimes alike.
 */

/** How long one graph is timed. */
export interface RepPolicy {
  readonly warmup: number; // untimed runs first (first-run allocations, page faults)
  readonly minRounds: number; // always at least this many samples per runtime
  readonly maxRounds: number; // never more than this many
  readonly budgetMs: number; // no new round past minRounds once this much time was spent timing the graph
}

/**
 * Full benchmark: up to 15 rounds within 5 s per graph, at least 3. No separate warm-up run: calibration's
 * first run is the warm-up (see `calibrate`).
 */
export const FULL_REPS: RepPolicy = Object.freeze({ warmup: 0, minRounds: 3, maxRounds: 15, budgetMs: 5000 });
/** --quick: two rounds. */
export const QUICK_REPS: RepPolicy = Object.freeze({ warmup: 0, minRounds: 2, maxRounds: 2, budgetMs: 0 });
/** The fewest rounds the full benchmark falls back to when it runs late. */
export const MIN_REPS: RepPolicy = Object.freeze({ warmup: 0, minRounds: 3, maxRounds: 3, budgetMs: 0 });

/** Shortest timed sample: workerd's clock ticks in whole milliseconds, so quick graphs are timed in batches. */
const MIN_SAMPLE_MS = 25;
const MAX_BATCH = 1024;

/** Wall-clock ms of `n` consecutive runs. */
async function batchMs(run: () => Promise<unknown>, n: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await run();
  return performance.now() - t0;
}

/**
 * Warm-up, then the batch size for {@link sampleRuns}: the smallest power of two whose batch takes at least
 * MIN_SAMPLE_MS (1 for any graph that takes that long by itself). The first calibration batch is untimed for
 * the results, so it doubles as a warm-up run.
 */
export async function calibrate(run: () => Promise<unknown>, warmup: number): Promise<number> {
  await batchMs(run, warmup);
  let size = 1;
  while (size < MAX_BATCH && (await batchMs(run, size)) < MIN_SAMPLE_MS) size *= 2;
  return size;
}

/** `count` samples, each the mean ms of one run over a batch of `batch` runs. */
export async function sampleRuns(run: () => Promise<unknown>, batch: number, count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push((await batchMs(run, batch)) / batch);
  return out;
}

/** The median of a non-empty list. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error("median of an empty list");
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
