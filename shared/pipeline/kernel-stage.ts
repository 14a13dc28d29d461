/**
 * One stage of a pipeline in a kernel instance of its own: the {@link StageRpc} the stage Worker serves
 * (functions/stage/) and what tests and the CLI run in process. Its weights load lazily, streamed from the model
 * store, on the first call that needs them; per session key it holds its attention layers' KV cache.
 */
import type { LogitsRequest, RowsReply, RowsRequest, StageIdentity, StageInfo, StageLoaded, StageRpc } from "../api/stage-rpc.ts";
import type { SpreadAttendRequest, SpreadKeysRequest, SpreadReply, VisionAttendRequest, VisionKeysRequest, VisionReply } from "../api/spread-rpc.ts";
import { KvSequence } from "../kernel/cache.ts";
import { KernelModel, type KernelModelOptions, type WeightSource } from "../kernel/model.ts";
import { InputError } from "../errors.ts";
import type { Manifest, ManifestStage } from "../model/manifest.ts";
import { SpreadSessions, VisionSessions } from "./spread-stage.ts";

/** Identity of a manifest stage, as the stage contract names it. */
export function stageIdentity(stage: ManifestStage): StageIdentity {
  const attention = stage.kind === "decoder" && stage.attention !== false;
  return { name: stage.name, kind: stage.kind, from: stage.from, to: stage.to, mlp: stage.mlp ?? null, attention };
}

export class KernelStage implements StageRpc {
  private model: Promise<KernelModel> | null = null;
  private loadedModel: KernelModel | null = null;
  private readonly sessions = new Map<string, KvSequence>();
  private readonly identity: StageIdentity;
  private logitRow: Float32Array | null = null;

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
    private readonly opts: KernelModelOptions & { maxSessions?: number } = {},
  ) {
    this.identity = stageIdentity(stage);
    this.maxSessions = Math.max(1, opts.maxSessions ?? manifest.budget?.sessions ?? 4);
    this.spread = new SpreadSessions({ open: (s, p) => this.openCache(s, p), get: (s) => this.sessions.get(s) }, manifest.config.text.hidden);
  }

  /** The sequence-parallel prefill's blocks held between calls (shared/pipeline/spread-stage.ts). */
  readonly spread: SpreadSessions;
  private readonly visionBlocks = new VisionSessions();

  /** The stage of `manifest` named `name`. @throws InputError when there is none. */
  static named(manifest: Manifest, name: string, open: WeightSource, opts: KernelModelOptions & { maxSessions?: number } = {}): KernelStage {
    const stage = manifest.stages.find((s) => s.name === name);
    if (!stage) throw new InputError("not_found", `model ${manifest.id} has no stage ${JSON.stringify(name)}`, "stage");
    return new KernelStage(manifest, stage, open, opts);
  }

  async describe(): Promise<StageInfo> {
    const m = this.loadedModel?.memory();
    return { ...this.identity, model: this.manifest.id, loaded: this.loadedModel !== null, sessions: this.sessions.size, weightBytes: m?.weightBytes ?? 0, memoryBytes: m?.memoryBytes ?? 0 };
  }

  async load(): Promise<StageLoaded> {
    const model = await this.kernel();
    const partOf = this.stage.kind === "decoder" && this.stage.mlp !== undefined;
    return { ...(await this.describe()), postFfNorm: partOf ? model.postFfNorm(this.stage.from) : null };
  }

  async prefill(req: RowsRequest): Promise<RowsReply> {
    const model = await this.kernel(["decoder"]);
    this.checkRows(req);
    if (!this.identity.attention) return this.rowsThrough(model, null, req);
    const seq = this.openCache(req.session, req.position);
    return seq instanceof KvSequence ? this.rowsThrough(model, seq, req) : seq;
  }

  async prefillKeys(req: SpreadKeysRequest): Promise<SpreadReply> {
    return this.spread.keys(await this.spreading(), req);
  }

  async prefillAttend(req: SpreadAttendRequest): Promise<SpreadReply> {
    return this.spread.attend(await this.spreading(), req);
  }

  /** The session's cache of `session` as onnxruntime lays it out ([kvHeads, length, hd] per layer held), or null. */
  readCache(session: string): { length: number; keys: Float32Array[]; values: Float32Array[] } | null {
    const seq = this.sessions.get(session);
    if (!seq) return null;
    const slots = seq.layers.map((_, i) => i);
    return { length: seq.length, keys: slots.map((i) => seq.read("keys", i, seq.length)), values: slots.map((i) => seq.read("values", i, seq.length)) };
  }

  /** The kernel, for a stage holding attention (the sequence-parallel prefill's calls). */
  private async spreading(): Promise<KernelModel> {
    const model = await this.kernel(["decoder"]);
    if (!this.identity.attention) throw new InputError("invalid_request", `stage ${this.stage.name} holds no attention: its rows go through prefill`, "stage");
    return model;
  }

  /** The session's cache continued at `position` (a fresh one at 0: the least recently used dropped past the limit), or the refusal. */
  private openCache(session: string, position: number): KvSequence | (RowsReply & { ok: false }) {
    let seq = this.sessions.get(session);
    if (position === 0) {
      seq?.clear();
      this.sessions.delete(session);
      while (this.sessions.size >= this.maxSessions) void this.drop([this.sessions.keys().next().value!]);
      seq = this.loadedModel!.newSequence(); // loaded: every caller awaited the kernel
      this.sessions.set(session, seq);
    }
    this.touch(session);
    return (this.refusal(seq, position) as (RowsReply & { ok: false }) | null) ?? seq!;
  }

  /**
   * Steps coalesce: the batches of every call that arrives while a step is pending or running (sessions decoding
   * concurrently, each from its own coordinator) run together as one pass over the weights (KernelModel
   * stepRows), each session's numbers exactly those of stepping it alone.
   */
  async step(batch: readonly RowsRequest[]): Promise<RowsReply[]> {
    const model = await this.kernel(["decoder"]);
    batch.forEach((req) => {
      this.checkRows(req);
      if (req.count !== 1) throw new InputError("invalid_request", `a step is one row per session, got ${req.count}`, "count");
    });
    return new Promise<RowsReply[]>((resolve, reject) => {
      this.pending.push({ batch, resolve, reject });
      if (this.pending.length === 1) setTimeout(() => this.flush(model), 0);
    });
  }

  /** Steps taken: calls of the kernel's batched step and the rows they carried (a batch's size = rows / calls). */
  readonly stepStats = { passes: 0, rows: 0 };
  private pending: { batch: readonly RowsRequest[]; resolve: (r: RowsReply[]) => void; reject: (e: unknown) => void }[] = [];

  private flush(model: KernelModel): void {
    const jobs = this.pending.splice(0);
    try {
      const replies = this.stepNow(model, jobs.flatMap((j) => j.batch));
      let at = 0;
      for (const j of jobs) j.resolve(replies.slice(at, (at += j.batch.length)));
    } catch (err) {
      for (const j of jobs) j.reject(err);
    }
  }

  /** Rows of distinct sessions in one pass (a session twice in a batch: its rows in later passes, in order). */
  private stepNow(model: KernelModel, reqs: readonly RowsRequest[]): RowsReply[] {
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
        const seq = this.sessions.get(req.session);
        this.touch(req.session);
        const refusal = this.refusal(seq, req.position);
        if (refusal) replies[i] = refusal;
        else run.push({ i, seq: seq!, row: req.rows, temp: false });
      }
      if (!run.length) continue;
      try {
        const out = model.stepRows(run.map((r) => r.seq), run.map((r) => r.row));
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
      this.spread.drop(s);
      this.sessions.get(s)?.clear();
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
    // The decode path's GEMVs, as a whole-model engine scores a prefill's last row and every step.
    this.logitRow ??= new Float32Array(vocab);
    for (let r = 0; r < req.count; r++) {
      model.logitsOf(req.rows.subarray(r * h, (r + 1) * h), this.logitRow);
      out.set(this.logitRow.subarray(from, to), r * width);
    }
    return out;
  }

  async vision(input: Float32Array): Promise<Float32Array> {
    return (await this.kernel(["vision"])).visionStage(input);
  }

  async visionKeys(req: VisionKeysRequest): Promise<VisionReply> {
    return this.visionBlocks.keys(await this.kernel(["vision"]), req);
  }

  async visionAttend(req: VisionAttendRequest): Promise<VisionReply> {
    return this.visionBlocks.attend(await this.kernel(["vision"]), req);
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
    const seq = this.sessions.get(session);
    if (!seq) return;
    this.sessions.delete(session);
    this.sessions.set(session, seq);
  }

  private checkRows(req: RowsRequest): void {
    const h = this.manifest.config.text.hidden;
    if (!Number.isInteger(req.count) || req.count < 1 || req.rows.length !== req.count * h) {
      throw new InputError("invalid_request", `rows must be f32[count, ${h}], got ${req.rows.length} values for count ${req.count}`, "rows");
    }
    if (!Number.isInteger(req.position) || req.position < 0) throw new InputError("invalid_request", `position must be an integer ≥ 0, got ${req.position}`, "position");
  }

  /** Why this stage cannot continue `seq` at `position` (null when it can; a longer cache is cut back). */
  private refusal(seq: KvSequence | undefined, position: number): RowsReply | null {
    if (!seq) return { ok: false, reason: "missing", length: 0 };
    if (seq.length < position) return { ok: false, reason: "behind", length: seq.length };
    seq.truncate(position);
    return null;
  }

  private rowsThrough(model: KernelModel, seq: KvSequence | null, req: RowsRequest): RowsReply {
    const s = seq ?? model.newSequence();
    try {
      const out = model.stageRows(s, req.rows, req.count);
      return { ok: true, hidden: out.hidden, partial: out.partial, length: seq ? s.length : req.position + req.count };
    } finally {
      if (!seq) s.clear();
    }
  }
}
