/**
 * Concurrent sessions through the pipeline, simulated event by event from the measured stage costs.
 *
 * `tokenLatencyMs` (model.ts) prices one token of B sessions that move in lockstep: every stage steps all B rows
 * in one call. Sessions are separate Durable Objects, each walking the stages at its own pace, so in a real
 * deployment they are not in lockstep: a stage is a single-threaded isolate that serves whatever calls are
 * waiting, and `KernelStage.step` coalesces every call that arrived while it was busy into its next pass. This
 * module plays exactly that:
 *
 *   - a session walks its token's hops in order (model.ts `tokenHops`); a hop sends one call to each of its
 *     stages, the request taking h / 2 to arrive and the reply h / 2 to return (h: the injected round trip);
 *     the session goes on when every call of the hop has returned, and after the head's hop spends the
 *     coordinator's time (assembling logits, sampling) before its next token;
 *   - a stage runs one pass at a time; an idle stage starts a pass with the calls that have arrived by then; a
 *     busy one queues calls, and when its pass ends the next pass takes the queue, first come first served, up
 *     to the stage's `maxBatch` rows (KernelStage's `stepBatch`: one row where batching shares no work);
 *   - a pass of b rows takes the stage's measured step time for b sessions, linearly interpolated between the
 *     batch sizes the bench measured (1, 4, 16); more rows than the largest measured batch is an error;
 *   - sessions start staggered, session i at i/N of one session's token latency (independent clients), or all
 *     at once (`burst`); throughput is counted over the window where every session is past its warm-up tokens
 *     and none has finished.
 *
 * With one session this is `tokenLatencyMs` exactly (tested), and it never assumes a batching gain that was not
 * measured: a pass of b rows costs what b rows cost in workerd.
 */
import { pipelinePoint, tokenHops, tokenLatencyMs, type PipelineCosts, type PipelinePoint, type StageCost } from "./model.ts";

export interface SimulationOptions {
  /** Tokens per session before counting, and counted. */
  readonly warmup?: number;
  readonly tokens?: number;
  /** How sessions start: evenly staggered over one token (default), at seeded random times within one token, or all at 0. */
  readonly arrivals?: "staggered" | "random" | "burst";
  /** Rows every stage takes per pass, over each stage's own `maxBatch` (default: every waiting call). */
  readonly maxBatch?: number;
}

export interface SimulationResult {
  readonly aggregate_tokens_per_s: number;
  readonly tokens_per_s_per_session: number;
  /** Rows per stage pass, averaged over every pass in the counted window. */
  readonly mean_batch: number;
}

/** A pass of `b` rows through `s`, ms: the measured step times, linear between measured batch sizes. */
export function passMs(s: StageCost, b: number): number {
  const sizes = Object.keys(s.stepMs).map(Number).sort((x, y) => x - y);
  const exact = s.stepMs[b];
  if (exact !== undefined) return exact;
  const hi = sizes.find((x) => x > b);
  const lo = [...sizes].reverse().find((x) => x < b);
  if (hi === undefined || lo === undefined) throw new Error(`stage ${s.name}: no measured step brackets ${b} sessions (measured: ${sizes.join(", ")})`);
  return s.stepMs[lo] + ((s.stepMs[hi] - s.stepMs[lo]) * (b - lo)) / (hi - lo);
}

interface Station {
  readonly cost: StageCost;
  busy: boolean;
  queue: number[];
}

/** A min-heap of timed events; ties keep insertion order, so a run is deterministic. */
class Events {
  private heap: { t: number; n: number; run: () => void }[] = [];
  private n = 0;
  push(t: number, run: () => void): void {
    const h = this.heap;
    h.push({ t, n: this.n++, run });
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }
  pop(): { t: number; run: () => void } | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length && last) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l], h[m])) m = l;
        if (r < h.length && this.less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
  private less(a: { t: number; n: number }, b: { t: number; n: number }): boolean {
    return a.t < b.t || (a.t === b.t && a.n < b.n);
  }
}

/** Throughput of `sessions` sessions decoding together at hop latency `hop` ms. */
export function simulateSessions(p: PipelineCosts, hop: number, sessions: number, o: SimulationOptions = {}): SimulationResult {
  const warmup = o.warmup ?? 8;
  const counted = o.tokens ?? 48;
  const hops = tokenHops(p).map((stages) => stages.map((cost): Station => ({ cost, busy: false, queue: [] })));
  const events = new Events();
  const done: number[][] = Array.from({ length: sessions }, () => []);
  const waiting = new Array<number>(sessions).fill(0);
  const at = new Array<number>(sessions).fill(0);
  const passes: { t: number; rows: number }[] = [];

  const begin = (s: number, t: number) => {
    const stations = hops[at[s]];
    waiting[s] = stations.length;
    for (const st of stations) events.push(t + hop / 2, () => arrive(st, s, t + hop / 2));
  };
  const arrive = (st: Station, s: number, t: number) => {
    st.queue.push(s);
    if (!st.busy) {
      st.busy = true;
      events.push(t, () => start(st, t)); // after every call arriving at the same instant
    }
  };
  const start = (st: Station, t: number) => {
    const batch = st.queue.splice(0, o.maxBatch ?? st.cost.maxBatch ?? Infinity);
    const end = t + passMs(st.cost, batch.length);
    passes.push({ t, rows: batch.length });
    events.push(end, () => {
      for (const s of batch) events.push(end + hop / 2, () => returned(s, end + hop / 2));
      if (st.queue.length) start(st, end);
      else st.busy = false;
    });
  };
  const returned = (s: number, t: number) => {
    if (--waiting[s] > 0) return;
    if (++at[s] < hops.length) return begin(s, t);
    const next = t + p.coordinatorMs;
    done[s].push(next);
    at[s] = 0;
    if (done[s].length < warmup + counted) events.push(next, () => begin(s, next));
  };

  const one = tokenLatencyMs(p, hop, 1);
  let seed = 0x9e3779b9;
  const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  for (let s = 0; s < sessions; s++) {
    const t0 = o.arrivals === "burst" ? 0 : o.arrivals === "random" ? random() * one : (s * one) / sessions;
    events.push(t0, () => begin(s, t0));
  }
  for (let e = events.pop(); e; e = events.pop()) e.run();

  const from = Math.max(...done.map((d) => d[warmup - 1]));
  const to = Math.min(...done.map((d) => d[warmup + counted - 1]));
  const tokens = done.reduce((a, d) => a + d.filter((t) => t > from && t <= to).length, 0);
  const inWindow = passes.filter((x) => x.t >= from && x.t < to);
  const aggregate = (tokens * 1000) / (to - from);
  const round = (x: number) => Math.round(x * 100) / 100;
  return {
    aggregate_tokens_per_s: round(aggregate),
    tokens_per_s_per_session: round(aggregate / sessions),
    mean_batch: round(inWindow.reduce((a, x) => a + x.rows, 0) / Math.max(1, inWindow.length)),
  };
}

/**
 * The bench's operating point of `sessions` concurrent sessions: time to first token as model.ts prices it, the
 * tokens/s simulated with every session's first step requested at once (`burst`, the arrival that keeps
 * coalescing stages in lockstep; staggered or random arrivals do no worse).
 */
export function simulatedPoint(p: PipelineCosts, hop: number, sessions: number, replicas = 1): PipelinePoint {
  const sim = simulateSessions(p, hop, sessions, { arrivals: "burst" });
  return { ...pipelinePoint(p, hop, sessions, replicas), tokens_per_s_per_session: sim.tokens_per_s_per_session, aggregate_tokens_per_s: sim.aggregate_tokens_per_s };
}
