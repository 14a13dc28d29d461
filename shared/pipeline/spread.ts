/**
 * The coordinator's sequence-parallel, chunked prefill (the stage side: shared/api/spread-rpc.ts). Per decoder
 * hop, the prompt's rows are cut into blocks (at least one per replica of the stage, none over the call
 * budget's rows) and block i goes to replica i mod r; then, layer by layer:
 *
 *   prefillKeys(block rows) on every block's replica, in parallel ─▶ each block's keys and values
 *   gather them in position order (f32[n, kvHeads·hd] per layer: 270 rows × 256 × 4 B × 2 ≈ 0.55 MB for Gemma-2B)
 *   prefillAttend(block, layer, all keys/values), in parallel     ─▶ the next layer's keys, or the block's rows
 *
 * The other MLP parts of a cut layer are stateless: their blocks go through `prefill` on their replicas in
 * parallel and the sums are combined row by row as the unsplit path does. The parts of a parallel cut each hold
 * the attention: every part runs the protocol above over its own replicas, all parts in the same hops, and the
 * first part's rows and every part's sum are combined the same way. Every replica holding a block ends
 * with the whole cache; the first one (the stage the decode steps go to) keeps it, the others drop it.
 *
 * Chunked prefill is the same protocol with r = 1: one call computes one layer for one block, so the rows per
 * block bound every call's CPU time ({@link callRows}).
 */
import type { RowsRequest } from "../api/stage-rpc.ts";
import type { SpreadBlockRequest, SpreadReply } from "../api/spread-rpc.ts";
import { combineParts } from "../engine/parts.ts";
import type { ModelConfig } from "../model/config.ts";
import type { LayerGroup } from "./groups.ts";
import { CacheLost, settled, type StageClient } from "./stage-client.ts";

/**
 * Default CPU budget of one stage call in the prefill, ms: a third of Workers' default 30 s CPU limit per
 * invocation, leaving room for a core two or three times slower than the one the throughput was measured on.
 */
export const DEFAULT_CALL_CPU_MS = 10_000;

/** Throughput the call budget assumes, GFLOP/s: the kernel's float32 GEMM on one core (int8/int4 run faster). */
export const ASSUMED_GFLOPS = 50;

/** Multiply-adds × 2 of one prompt row through one decoder layer attending to `keys` positions. */
export function rowLayerFlops(config: ModelConfig, keys: number): number {
  const { hidden: h, heads, kvHeads, headDim: hd, intermediate } = config.text;
  return 2 * (h * (heads + 2 * kvHeads) * hd + heads * hd * h + 3 * h * intermediate + 2 * heads * hd * keys);
}

/** Rows one call may compute through one layer (against `keys` positions) within `budgetMs` at `gflops`. */
export function callRows(config: ModelConfig, keys: number, budgetMs = DEFAULT_CALL_CPU_MS, gflops = ASSUMED_GFLOPS): number {
  return Math.max(1, Math.floor((budgetMs * 1e6 * gflops) / rowLayerFlops(config, keys)));
}

/** A block of the chunk and the replica it goes to. */
interface Block {
  readonly offset: number;
  readonly count: number;
  readonly replica: number;
}

/** `n` rows in near-equal blocks, at least one per replica (while rows last), none over `maxRows`. */
export function blocksOf(n: number, replicas: number, maxRows: number): Block[] {
  const k = Math.max(Math.min(replicas, n), Math.ceil(n / maxRows));
  const base = Math.floor(n / k);
  const blocks: Block[] = [];
  for (let i = 0, offset = 0; i < k; i++) {
    const count = base + (i < n % k ? 1 : 0);
    blocks.push({ offset, count, replica: i % replicas });
    offset += count;
  }
  return blocks;
}

/** Runs a prompt's rows through the decoder hops in blocks over each stage's replicas (see the file's comment). */
export class SpreadPrefiller {
  private runs = 0;

  /**
   * @param replicasOf a stage's replicas, the stage's own client first (it keeps the cache)
   */
  constructor(
    private readonly groups: readonly LayerGroup<StageClient>[],
    private readonly replicasOf: (s: StageClient) => readonly StageClient[],
    private readonly config: ModelConfig,
  ) {}

  /**
   * Rows f32[count, H] at cache position `position` through every decoder hop, in blocks of at most `maxRows`
   * rows (the call budget); the last layer's rows come back.
   */
  async run(key: string, rows: Float32Array, count: number, position: number, maxRows: number): Promise<Float32Array> {
    const run = `${key}:${++this.runs}`;
    let x = rows;
    for (const g of this.groups) {
      if (g.parallel) {
        // Every part is an attention stage of the layer: each spreads over its own replicas, all parts at once.
        const parts = await settled([g.first, ...g.rest].map((s) => this.attention(this.replicasOf(s), key, run, x, count, position, maxRows)));
        x = combineParts(parts[0].hidden, parts.map((r) => r.partial!), g.postFfNorm, this.config.text.rmsNormEps);
        continue;
      }
      const reps = this.replicasOf(g.first);
      const a = g.first.stage.attention !== false ? await this.attention(reps, key, run, x, count, position, maxRows) : await this.stateless(reps, key, x, count, position, maxRows);
      if (a.partial === null) {
        x = a.hidden;
        continue;
      }
      const rest = await Promise.all(g.rest.map((s) => this.stateless(this.replicasOf(s), key, a.hidden, count, position, maxRows)));
      x = combineParts(a.hidden, [a.partial, ...rest.map((r) => r.partial!)], g.postFfNorm, this.config.text.rmsNormEps);
    }
    const others = this.groups.flatMap((g) => [g.first, ...g.rest].flatMap((s) => (s.stage.attention !== false ? this.replicasOf(s).slice(1) : [])));
    await Promise.all(others.map((s) => s.call("drop", [key]).catch((err) => console.warn(`dropping ${key} in a replica of ${s.stage.name}:`, err))));
    return x;
  }

  /** One stage holding attention over its replicas: keys, gathered, attention + MLP, layer after layer. */
  private async attention(reps: readonly StageClient[], key: string, run: string, x: Float32Array, n: number, position: number, maxRows: number): Promise<{ hidden: Float32Array; partial: Float32Array | null }> {
    const { hidden: h, kvHeads, headDim: hd } = this.config.text;
    const kvd = kvHeads * hd;
    const blocks = blocksOf(n, reps.length, maxRows);
    const at = (b: Block): SpreadBlockRequest => ({ session: key, run, position, total: n, offset: b.offset, count: b.count });
    const ok = (r: SpreadReply, s: StageClient) => {
      if (!r.ok) throw new CacheLost(s.stage.name);
      return r;
    };
    let replies = await Promise.all(blocks.map(async (b) => ok(await reps[b.replica].call("prefillKeys", { ...at(b), rows: x.slice(b.offset * h, (b.offset + b.count) * h) }), reps[b.replica])));
    for (;;) {
      const first = replies[0];
      if (first.kind === "rows") break;
      const keys = new Float32Array(n * kvd);
      const values = new Float32Array(n * kvd);
      replies.forEach((r, i) => {
        if (r.kind !== "keys" || r.layer !== first.layer) throw new Error(`replicas of ${reps[0].stage.name} disagree on the layer they are at`);
        keys.set(r.keys, blocks[i].offset * kvd);
        values.set(r.values, blocks[i].offset * kvd);
      });
      replies = await Promise.all(blocks.map(async (b) => ok(await reps[b.replica].call("prefillAttend", { ...at(b), layer: first.layer, keys, values }), reps[b.replica])));
    }
    return gather(blocks, replies.map((r) => (r.kind === "rows" ? r : null)), n * h, h);
  }

  /** A stage without attention (an MLP part): its blocks through `prefill` on its replicas, in parallel. */
  private async stateless(reps: readonly StageClient[], key: string, x: Float32Array, n: number, position: number, maxRows: number): Promise<{ hidden: Float32Array; partial: Float32Array | null }> {
    const h = this.config.text.hidden;
    const blocks = blocksOf(n, reps.length, maxRows);
    const replies = await Promise.all(
      blocks.map(async (b) => {
        const req: RowsRequest = { session: key, position: position + b.offset, rows: x.slice(b.offset * h, (b.offset + b.count) * h), count: b.count };
        const r = await reps[b.replica].call("prefill", req);
        if (!r.ok) throw new CacheLost(reps[b.replica].stage.name);
        return r;
      }),
    );
    return gather(blocks, replies, n * h, h);
  }
}

/** The blocks' rows (and MLP-part sums) put back in position order. */
function gather(blocks: readonly Block[], replies: readonly ({ hidden: Float32Array; partial: Float32Array | null } | null)[], size: number, h: number): { hidden: Float32Array; partial: Float32Array | null } {
  const hidden = new Float32Array(size);
  const partial = replies[0]?.partial ? new Float32Array(size) : null;
  replies.forEach((r, i) => {
    if (!r) throw new Error("a replica answered keys where rows were due");
    hidden.set(r.hidden, blocks[i].offset * h);
    if (partial) partial.set(r.partial!, blocks[i].offset * h);
  });
  return { hidden, partial };
}
