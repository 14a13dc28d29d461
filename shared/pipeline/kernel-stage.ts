/**
 * One stage of a pipeline in a kernel instance of its own: the {@link StageRpc} the stage Worker serves
 * (functions/stage/) and what tests and the CLI run in process. Its weights load lazily, streamed from the model
 * store, on the first call that needs them; per session key it holds its attention layers' KV cache, computed
 * with one LoRA adapter (or none). Adapters' factors for this stage load on first use, under the kernel
 * instance's adapter budget (`maxAdapterBytes`, least recently used dropped).
 */
import type { LogitsRequest, RowsReply, RowsRequest, StageIdentity, StageInfo, StageLoaded, StageRpc } from "../api/stage-rpc.ts";
import type { KvSequence } from "../kernel/cache.ts";
import type { KernelAdapter } from "../kernel/lora.ts";
import { KernelModel, type KernelModelOptions, type WeightSource } from "../kernel/model.ts";
import { AdapterRegistry, storeOver } from "../engine/adapters.ts";
import { InputError } from "../errors.ts";
import type { Manifest, ManifestStage } from "../model/manifest.ts";

/** Identity of a manifest stage, as the stage contract names it. */
export function stageIdentity(stage: ManifestStage): StageIdentity {
  const attention = stage.kind === "decoder" && stage.attention !== false;
  return { name: stage.name, kind: stage.kind, from: stage.from, to: stage.to, mlp: stage.mlp ?? null, attention };
}

/** A kernel stage's options: the kernel instance's, the sessions it keeps, and the model's adapters. */
export type KernelStageOptions = KernelModelOptions & {
  readonly maxSessions?: number;
  /** Where adapters' manifests and factor files are read (default: the model's, through `open`). */
  readonly adapters?: AdapterRegistry;
};

/** A session's cache in a stage: its KV sequence and the adapter it was computed with. */
interface SessionCache {
  readonly seq: KvSequence;
  readonly adapter: string | null;
}

export class KernelStage implements StageRpc {
  private model: Promise<KernelModel> | null = null;
  private loadedModel: KernelModel | null = null;
  private readonly sessions = new Map<string, SessionCache>();
  private readonly adapters: AdapterRegistry;
  private readonly identity: StageIdentity;

  private readonly maxSessions: number;

  /**
   * @param open opens a weight file by its manifest name (a stream or bytes)
   * @param opts the kernel instance's options, and the most sessions whose caches it keeps (default: the
   *   sessions its stage was planned for, `manifest.budget.sessions`, else 4); starting one more drops the least
   *   recently used, whose coordinator then rebuilds it by replay
   */
  constructor(
    readonly manifest: Manifest,
    readonly stage: ManifestStage,
    private readonly open: WeightSource,
    private readonly opts: KernelStageOptions = {},
  ) {
    this.identity = stageIdentity(stage);
    this.adapters = opts.adapters ?? new AdapterRegistry(manifest, storeOver(open));
    this.maxSessions = Math.max(1, opts.maxSessions ?? manifest.budget?.sessions ?? 4);
  }

  /** The stage of `manifest` named `name`. @throws InputError when there is none. */
  static named(manifest: Manifest, name: string, open: WeightSource, opts: KernelStageOptions = {}): KernelStage {
    const stage = manifest.stages.find((s) => s.name === name);
    if (!stage) throw new InputError("not_found", `model ${manifest.id} has no stage ${JSON.stringify(name)}`, "stage");
    return new KernelStage(manifest, stage, open, opts);
  }

  async describe(): Promise<StageInfo> {
    const m = this.loadedModel?.memory();
    return { ...this.identity, model: this.manifest.id, loaded: this.loadedModel !== null, sessions: this.sessions.size, weightBytes: m?.weightBytes ?? 0, memoryBytes: m?.memoryBytes ?? 0, adapters: m?.adapters ?? [] };
  }

  async load(): Promise<StageLoaded> {
    const model = await this.kernel();
    const partOf = this.stage.kind === "decoder" && this.stage.mlp !== undefined;
    return { ...(await this.describe()), postFfNorm: partOf ? model.postFfNorm(this.stage.from) : null };
  }

  async prefill(req: RowsRequest): Promise<RowsReply> {
    const model = await this.kernel(["decoder"]);
    this.checkRows(req);
    const adapter = req.adapter ?? null;
    const lora = await this.lora(model, adapter); // from here on synchronous: the adapter stays held
    if (!this.identity.attention) return this.rowsThrough(model, null, req, lora);
    if (req.position === 0) {
      void this.drop([req.session]);
      while (this.sessions.size >= this.maxSessions) void this.drop([this.sessions.keys().next().value!]);
      this.sessions.set(req.session, { seq: model.newSequence(), adapter });
    }
    this.touch(req.session);
    const cache = this.sessions.get(req.session);
    const refusal = this.refusal(cache, req.position, adapter);
    return refusal ?? this.rowsThrough(model, cache!.seq, req, lora);
  }

  /**
   * Steps coalesce: the batches of every call that arrives while a step is pending or running (sessions decoding
   * concurrently, each from its own coordinator) run together as one pass over the weights (KernelModel
   * stepRows, once per adapter among them), each session's numbers exactly those of stepping it alone.
   */
  async step(batch: readonly RowsRequest[]): Promise<RowsReply[]> {
    const model = await this.kernel(["decoder"]);
    batch.forEach((req) => {
      this.checkRows(req);
      if (req.count !== 1) throw new InputError("invalid_request", `a step is one row per session, got ${req.count}`, "count");
    });
    return new Promise<RowsReply[]>((resolve, reject) => {
      this.pending.push({ batch, resolve, reject });
      if (this.pending.length === 1) setTimeout(() => void this.flush(model), 0);
    });
  }

  /** Steps taken: calls of the kernel's batched step and the rows they carried (a batch's size = rows / calls). */
  readonly stepStats = { passes: 0, rows: 0 };
  private pending: { batch: readonly RowsRequest[]; resolve: (r: RowsReply[]) => void; reject: (e: unknown) => void }[] = [];

  private async flush(model: KernelModel): Promise<void> {
    const jobs = this.pending.splice(0);
    try {
      const reqs = jobs.flatMap((j) => j.batch);
      const replies: RowsReply[] = new Array(reqs.length);
      // One pass per adapter, each run right after its adapter is resolved (nothing can drop it in between).
      for (const adapter of new Set(reqs.map((r) => r.adapter ?? null))) {
        const at = reqs.flatMap((r, i) => ((r.adapter ?? null) === adapter ? [i] : []));
        const lora = adapter === null ? null : await this.lora(model, adapter);
        this.stepNow(model, at.map((i) => reqs[i]), lora).forEach((r, j) => (replies[at[j]] = r));
      }
      let at = 0;
      for (const j of jobs) j.resolve(replies.slice(at, (at += j.batch.length)));
    } catch (err) {
      for (const j of jobs) j.reject(err);
    }
  }

  /** Rows of distinct sessions in one pass (a session twice in a batch: its rows in later passes, in order). */
  private stepNow(model: KernelModel, reqs: readonly RowsRequest[], lora: KernelAdapter | null): RowsReply[] {
    const replies: RowsReply[] = new Array(reqs.length);
    let todo = reqs.map((req, i) => ({ req, i }));
    while (todo.length) {
      const seen = new Set<string>();
      const pass = todo.filter((t) => !seen.has(t.req.session) && (seen.add(t.req.session), true));
      todo = todo.filter((t) => !pass.includes(t));
      const run: { i: number; seq: KvSequence; row: Float32Array; temp: boolean }[] = [];
      for (const { req, i } of pass) {
        if (!this.identity.attention) {
          run.push({ i, seq: model.newSequence(), row: req.rows, temp: true });
          continue;
        }
        const cache = this.sessions.get(req.session);
        this.touch(req.session);
        const refusal = this.refusal(cache, req.position, lora?.name ?? null);
        if (refusal) replies[i] = refusal;
        else run.push({ i, seq: cache!.seq, row: req.rows, temp: false });
      }
      if (!run.length) continue;
      try {
        const out = model.stepRows(run.map((r) => r.seq), run.map((r) => r.row), lora);
        this.stepStats.passes++;
        this.stepStats.rows += run.length;
        run.forEach((r, j) => (replies[r.i] = { ok: true, hidden: out[j].hidden, partial: out[j].partial, length: r.temp ? pass.find((p) => p.i === r.i)!.req.position + 1 : r.seq.length }));
      } finally {
        for (const r of run) if (r.temp) r.seq.clear();
      }
    }
    return replies;
  }

  async drop(sessions: readonly string[]): Promise<void> {
    for (const s of sessions) {
      this.sessions.get(s)?.seq.clear();
      this.sessions.delete(s);
    }
  }

  async embed(ids: readonly number[]): Promise<Float32Array> {
    const model = await this.kernel(["head"]);
    const h = this.manifest.config.text.hidden;
    const out = new Float32Array(ids.length * h);
    ids.forEach((id, r) => {
      if (!Number.isInteger(id) || id < this.stage.from || id >= this.stage.to) {
        throw new InputError("invalid_request", `token id ${id} is outside this shard's rows [${this.stage.from}, ${this.stage.to})`, "ids");
      }
      model.embed(id, out.subarray(r * h, (r + 1) * h));
    });
    return out;
  }

  async logits(req: LogitsRequest): Promise<Float32Array> {
    const model = await this.kernel(["head"]);
    const { hidden: h, vocab } = this.manifest.config.text;
    const { from, to } = this.stage;
    const width = to - from;
    if (!Number.isInteger(req.count) || req.count < 1 || req.rows.length !== req.count * h) {
      throw new InputError("invalid_request", `logits need rows f32[count, ${h}], got ${req.rows.length} values for count ${req.count}`, "rows");
    }
    const out = new Float32Array(req.count * width);
    if (req.all) {
      const all = model.headRows(req.rows, req.count);
      for (let r = 0; r < req.count; r++) out.set(all.subarray(r * vocab + from, r * vocab + to), r * width);
      return out;
    }
    // The decode path's GEMVs, as a whole-model engine scores a prefill's last row and every step; the rows of
    // calls arriving together (sessions decoding concurrently) are scored in one pass over the table.
    return new Promise<Float32Array>((resolve, reject) => {
      this.pendingLogits.push({ req, out, resolve, reject });
      if (this.pendingLogits.length === 1) setTimeout(() => this.flushLogits(model), 0);
    });
  }

  private pendingLogits: { req: LogitsRequest; out: Float32Array; resolve: (r: Float32Array) => void; reject: (e: unknown) => void }[] = [];

  private flushLogits(model: KernelModel): void {
    const jobs = this.pendingLogits.splice(0);
    const h = this.manifest.config.text.hidden;
    const width = this.stage.to - this.stage.from;
    try {
      const rows: Float32Array[] = [];
      const outs: Float32Array[] = [];
      for (const j of jobs) {
        for (let r = 0; r < j.req.count; r++) {
          rows.push(j.req.rows.subarray(r * h, (r + 1) * h));
          outs.push(j.out.subarray(r * width, (r + 1) * width));
        }
      }
      for (let at = 0; at < rows.length; at += 16) model.logitsRows(rows.slice(at, at + 16), outs.slice(at, at + 16), this.stage.from);
      for (const j of jobs) j.resolve(j.out);
    } catch (err) {
      for (const j of jobs) j.reject(err);
    }
  }

  async vision(input: Float32Array, adapter: string | null = null): Promise<Float32Array> {
    const model = await this.kernel(["vision"]);
    return model.visionStage(input, await this.lora(model, adapter));
  }

  /**
   * Adapter `name`'s factors for this stage (null: the base), loaded on first use; returned held, so a caller
   * that uses it before its next `await` cannot see it dropped by another request's load.
   */
  private async lora(model: KernelModel, name: string | null | undefined): Promise<KernelAdapter | null> {
    if (name === null || name === undefined) return null;
    const manifest = await this.adapters.get(name);
    for (;;) {
      const lora = await model.adapter(manifest, this.adapters.opener(name));
      if (!lora.isReleased) return lora;
    }
  }

  private kernel(kinds?: readonly ManifestStage["kind"][]): Promise<KernelModel> {
    if (kinds && !kinds.includes(this.stage.kind)) {
      return Promise.reject(new InputError("invalid_request", `stage ${this.stage.name} is a ${this.stage.kind} stage, not ${kinds.join(" or ")}`, "stage"));
    }
    if (!this.model) {
      const p = KernelModel.load(this.manifest, [this.stage], this.open, this.opts).then((m) => (this.loadedModel = m));
      p.catch(() => this.model === p && (this.model = null));
      this.model = p;
    }
    return this.model;
  }

  /** Marks a session most recently used (the Map keeps insertion order: least recent first). */
  private touch(session: string): void {
    const cache = this.sessions.get(session);
    if (!cache) return;
    this.sessions.delete(session);
    this.sessions.set(session, cache);
  }

  private checkRows(req: RowsRequest): void {
    const h = this.manifest.config.text.hidden;
    if (!Number.isInteger(req.count) || req.count < 1 || req.rows.length !== req.count * h) {
      throw new InputError("invalid_request", `rows must be f32[count, ${h}], got ${req.rows.length} values for count ${req.count}`, "rows");
    }
    if (!Number.isInteger(req.position) || req.position < 0) throw new InputError("invalid_request", `position must be an integer ≥ 0, got ${req.position}`, "position");
  }

  /**
   * Why this stage cannot continue `cache` at `position` under `adapter` (null when it can; a longer cache is cut
   * back): a cache computed with another adapter counts as missing.
   */
  private refusal(cache: SessionCache | undefined, position: number, adapter: string | null): RowsReply | null {
    if (!cache || cache.adapter !== adapter) return { ok: false, reason: "missing", length: 0 };
    const seq = cache.seq;
    if (seq.length < position) return { ok: false, reason: "behind", length: seq.length };
    seq.truncate(position);
    return null;
  }

  private rowsThrough(model: KernelModel, seq: KvSequence | null, req: RowsRequest, lora: KernelAdapter | null): RowsReply {
    const s = seq ?? model.newSequence();
    try {
      const out = model.stageRows(s, req.rows, req.count, undefined, lora);
      return { ok: true, hidden: out.hidden, partial: out.partial, length: seq ? s.length : req.position + req.count };
    } finally {
      if (!seq) s.clear();
    }
  }
}
