/**
 * A stage's concurrent `step` calls, queued for its passes over the weights: each pass takes the calls waiting
 * when it starts, first come first served, up to a number of session rows (whole calls, at least one); calls
 * arriving meanwhile wait for the next pass.
 *
 * The limit (KernelStage's `stepBatch`) defaults to 16 where a batched pass shares work between its rows, and
 * to 1 where it does not (int8 activations on relaxed SIMD): coalescing would then gain nothing and cost
 * throughput, because sessions served in one pass get their replies together, reach the next stage together
 * and stay in lockstep, each paying for the others' rows at every stage; served one by one they spread out,
 * and the pipeline's stages work on different sessions at once (bench/pipeline/simulate.ts plays both).
 */
import type { RowsReply, RowsRequest } from "../api/stage-rpc.ts";

interface Job {
  readonly batch: readonly RowsRequest[];
  readonly resolve: (r: RowsReply[]) => void;
  readonly reject: (e: unknown) => void;
}

export class StepQueue {
  private pending: Job[] = [];

  /**
   * @param pass runs one pass over the rows of the calls it took, a reply per row in order
   * @param limit the session rows a pass takes at most
   */
  constructor(
    private readonly pass: (rows: readonly RowsRequest[]) => Promise<RowsReply[]>,
    private readonly limit: () => number,
  ) {}

  /** The replies to `batch`'s rows, once a pass has run them. */
  push(batch: readonly RowsRequest[]): Promise<RowsReply[]> {
    return new Promise<RowsReply[]>((resolve, reject) => {
      this.pending.push({ batch, resolve, reject });
      if (this.pending.length === 1) setTimeout(() => void this.flush(), 0);
    });
  }

  private async flush(): Promise<void> {
    const limit = this.limit();
    let take = 1;
    for (let rows = this.pending[0].batch.length; take < this.pending.length && rows + this.pending[take].batch.length <= limit; take++) rows += this.pending[take].batch.length;
    const jobs = this.pending.splice(0, take);
    if (this.pending.length) setTimeout(() => void this.flush(), 0);
    try {
      const replies = await this.pass(jobs.flatMap((j) => j.batch));
      let at = 0;
      for (const j of jobs) j.resolve(replies.slice(at, (at += j.batch.length)));
    } catch (err) {
      for (const j of jobs) j.reject(err);
    }
  }
}
