/**
 * POST /stage-timing: one stage of a pipeline timed as its stage worker runs it (shared/pipeline/kernel-stage.ts,
 * the same code), alone in this isolate, its weights streamed from a loopback file server. Decoder stages: one
 * `rows`-row prefill (a prompt), then decode steps batched over 1…max(batches) sessions (one `step` call with a
 * row per session: a stage's batch); head shards: logits of 1…max(batches) rows; vision stages: one image's rows.
 * Means of `reps` calls after one warm-up, timed as one span. POST /hop: the round trip of a Workers RPC call to this same
 * worker over a service binding (a stage hop on one machine), with a payload of `floats` float32.
 */
import type { RowsRequest } from "../../shared/api/stage-rpc.ts";
import type { KernelModule } from "../../shared/kernel/module.ts";
import { parseManifest } from "../../shared/model/manifest.ts";
import { KernelStage } from "../../shared/pipeline/kernel-stage.ts";

export interface StageTimingRequest {
  readonly modelUrl: string;
  readonly stage: string;
  readonly rows: number;
  readonly batches: readonly number[];
  readonly reps: number;
  /** Replica counts r to time one replica's share of the spread prefill or image for (a block of ⌈rows / r⌉ rows). */
  readonly spread?: readonly number[];
}

export interface StageTimingReply {
  readonly loadMs: number;
  /** One prompt's prefill (decoder), one image (vision); 0 for head shards. */
  readonly prefillMs: number;
  /** Per batch size: mean ms of one batched step (decoder) or of scoring that many rows (head). */
  readonly stepMs: Record<string, number>;
  /** Per replica count r: one replica's calls for its block of the spread prefill (decoder) or image (vision), ms. */
  readonly spreadMs?: Record<string, number>;
  /** Decoder: the session rows the stage takes per pass of concurrent steps (KernelStage.stepBatchLimit). */
  readonly stepBatch?: number;
}

function rowsOf(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sin(seed + i * 0.37) * 0.5;
  return out;
}

/**
 * Mean ms of `reps` back-to-back calls after one warm-up, timed as one span: workerd's clock only moves in whole
 * milliseconds at I/O, so one span over many calls resolves what a call's own span cannot.
 */
async function timed(reps: number, f: () => Promise<unknown>): Promise<number> {
  await f();
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) await f();
  return (performance.now() - t0) / reps;
}

export async function stageTiming(req: StageTimingRequest, kernel: KernelModule): Promise<StageTimingReply> {
  const manifest = parseManifest(await (await fetch(new URL("manifest.json", req.modelUrl))).json());
  const open = async (name: string) => {
    const res = await fetch(new URL(name, req.modelUrl));
    if (!res.ok || !res.body) throw new Error(`${name}: HTTP ${res.status}`);
    return res.body;
  };
  const stage = KernelStage.named(manifest, req.stage, open, { kernel, maxSessions: Math.max(...req.batches) });
  const t0 = performance.now();
  await stage.load();
  const loadMs = performance.now() - t0;
  const c = manifest.config;
  const h = c.text.hidden;
  const most = Math.max(...req.batches);
  const stepMs: Record<string, number> = {};
  let prefillMs = 0;
  if (stage.stage.kind === "decoder") {
    const prompt = rowsOf(req.rows * h, 1);
    const t1 = performance.now();
    await stage.prefill({ session: "s0", position: 0, rows: prompt, count: req.rows });
    prefillMs = performance.now() - t1;
    for (let s = 1; s < most; s++) await stage.prefill({ session: `s${s}`, position: 0, rows: prompt, count: req.rows });
    const row = rowsOf(h, 2);
    for (const b of req.batches) {
      // Each timed call appends one position per session; cut back to the prompt so every call sees the same cache.
      const batch: RowsRequest[] = Array.from({ length: b }, (_, s) => ({ session: `s${s}`, position: req.rows, rows: row, count: 1 }));
      stepMs[b] = await timed(req.reps, () => stage.step(batch));
    }
  } else if (stage.stage.kind === "head") {
    for (const b of req.batches) {
      const rows = rowsOf(b * h, 3);
      stepMs[b] = await timed(req.reps, () => stage.logits({ rows, count: b }));
    }
  } else {
    const input = stage.stage.from === 0 ? rowsOf(3 * c.vision.imageSize ** 2, 1) : rowsOf(c.imageTokens * c.vision.hidden, 1);
    prefillMs = await timed(Math.min(req.reps, 2), () => stage.vision(input));
  }
  return { loadMs, prefillMs, stepMs, spreadMs: await spreadTiming(stage, req), ...(stage.stepBatchLimit !== null && stage.stage.kind === "decoder" ? { stepBatch: stage.stepBatchLimit } : {}) };
}

/**
 * One replica's share of a spread prefill (a block of ⌈rows / r⌉ rows attending over all `rows` keys, through
 * every layer of the stage: the keys call, then one attend call per layer) or of a spread image (⌈N / r⌉ of the
 * N patches), timed as the replica runs it. MLP-only parts: a prefill of the block's rows.
 */
async function spreadTiming(stage: KernelStage, req: StageTimingRequest): Promise<Record<string, number>> {
  const c = stage.manifest.config;
  const out: Record<string, number> = {};
  let runs = 0;
  for (const r of req.spread ?? []) {
    if (stage.stage.kind === "head") break;
    if (stage.stage.kind === "vision") {
      const n = c.imageTokens;
      const m = Math.ceil(n / r);
      const d = c.vision.hidden;
      const input = stage.stage.from === 0 ? rowsOf(3 * c.vision.imageSize ** 2, 1) : rowsOf(m * d, 1);
      const [keys, values] = [rowsOf(n * d, 4), rowsOf(n * d, 5)];
      out[r] = await timed(Math.min(req.reps, 2), async () => {
        const block = { run: `v${++runs}`, offset: 0, count: m };
        let reply = await stage.visionKeys({ ...block, input });
        while (reply.kind === "keys") reply = await stage.visionAttend({ ...block, layer: reply.layer, keys, values });
      });
      continue;
    }
    const h = c.text.hidden;
    const m = Math.ceil(req.rows / r);
    const rows = rowsOf(m * h, 1);
    if (stage.stage.attention === false) {
      out[r] = await timed(Math.min(req.reps, 3), () => stage.prefill({ session: "spread", position: 0, rows, count: m }));
      continue;
    }
    const kvd = c.text.kvHeads * c.text.headDim;
    const [keys, values] = [rowsOf(req.rows * kvd, 4), rowsOf(req.rows * kvd, 5)];
    out[r] = await timed(Math.min(req.reps, 3), async () => {
      const block = { session: "spread", run: `t${++runs}`, position: 0, total: req.rows, offset: 0, count: m };
      let reply = await stage.prefillKeys({ ...block, rows });
      while (reply.ok && reply.kind === "keys") reply = await stage.prefillAttend({ ...block, layer: reply.layer, keys, values });
      if (!reply.ok) throw new Error(`spread timing: the stage refused the block (${reply.reason})`);
    });
  }
  return out;
}
