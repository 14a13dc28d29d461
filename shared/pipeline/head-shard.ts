/**
 * A head shard: the embedding rows of its token ids (the tied table), and its logits: its vocabulary rows [from, to) scored for hidden rows f32[count, H]. A prefill's every
 * row (`all`) goes through the head GEMM; single rows (a prefill's last row, every decode step) through the decode
 * path's GEMVs, and the rows of calls arriving together (sessions decoding concurrently) in one pass over the
 * table, 16 rows at a time: bit-identical to scoring each alone (`KernelModel.logitsRows`).
 */
import type { LogitsRequest } from "../api/stage-rpc.ts";
import { InputError } from "../errors.ts";
import type { KernelModel } from "../kernel/model.ts";

/** Rows scored in one pass over the head table. */
const BATCH_ROWS = 16;

interface Job {
  readonly req: LogitsRequest;
  readonly out: Float32Array; // f32[count, to - from]
  readonly resolve: (r: Float32Array) => void;
  readonly reject: (e: unknown) => void;
}

/** One head shard's embedding rows and batched logits. */
export class HeadShard {
  private pending: Job[] = [];

  constructor(
    private readonly text: { readonly hidden: number; readonly vocab: number },
    private readonly shard: { readonly from: number; readonly to: number },
  ) {}

  /** Embedding rows f32[ids.length, H] of `ids`, each in [from, to). @throws InputError for an id outside. */
  embed(model: KernelModel, ids: readonly number[]): Float32Array {
    const h = this.text.hidden;
    const out = new Float32Array(ids.length * h);
    ids.forEach((id, r) => {
      if (!Number.isInteger(id) || id < this.shard.from || id >= this.shard.to) {
        throw new InputError("invalid_request", `token id ${id} is outside this shard's rows [${this.shard.from}, ${this.shard.to})`, "ids");
      }
      model.embed(id, out.subarray(r * h, (r + 1) * h));
    });
    return out;
  }

  /** Logits f32[count, to - from] of `req.rows` through `model`'s head slices. @throws InputError for bad rows. */
  logits(model: KernelModel, req: LogitsRequest): Promise<Float32Array> {
    const { hidden: h, vocab } = this.text;
    const { from, to } = this.shard;
    const width = to - from;
    if (!Number.isInteger(req.count) || req.count < 1 || req.rows.length !== req.count * h) {
      throw new InputError("invalid_request", `logits need rows f32[count, ${h}], got ${req.rows.length} values for count ${req.count}`, "rows");
    }
    const out = new Float32Array(req.count * width);
    if (req.all) {
      const all = model.headRows(req.rows, req.count);
      for (let r = 0; r < req.count; r++) out.set(all.subarray(r * vocab + from, r * vocab + to), r * width);
      return Promise.resolve(out);
    }
    return new Promise<Float32Array>((resolve, reject) => {
      this.pending.push({ req, out, resolve, reject });
      if (this.pending.length === 1) setTimeout(() => this.flush(model), 0);
    });
  }

  private flush(model: KernelModel): void {
    const jobs = this.pending.splice(0);
    const h = this.text.hidden;
    const width = this.shard.to - this.shard.from;
    try {
      const rows: Float32Array[] = [];
      const outs: Float32Array[] = [];
      for (const j of jobs) {
        for (let r = 0; r < j.req.count; r++) {
          rows.push(j.req.rows.subarray(r * h, (r + 1) * h));
          outs.push(j.out.subarray(r * width, (r + 1) * width));
        }
      }
      for (let at = 0; at < rows.length; at += BATCH_ROWS) model.logitsRows(rows.slice(at, at + BATCH_ROWS), outs.slice(at, at + BATCH_ROWS), this.shard.from);
      for (const j of jobs) j.resolve(j.out);
    } catch (err) {
      for (const j of jobs) j.reject(err);
    }
  }
}
