/**
 * One stage of a pipeline in a kernel instance of its own: the {@link StageRpc} the stage Worker serves
 * (functions/stage/) and what tests and the CLI run in process. Its weights load lazily, streamed from the model
 * store, on the first call that needs them; per session key it holds its attention layers' KV cache, computed
 * with one LoRA adapter (or none). Adapters' factors for this stage load on first use, under the kernel
 * instance's adapter budget (`maxAdapterBytes`, least recently used dropped).
 */
import type { LogitsRequest, RowsReply, RowsRequest, StageIdentity, StageInfo, StageLoaded, StageRpc } from "../api/stage-rpc.ts";
import type { SpreadAttendRequest, SpreadKeysRequest, SpreadReply, VisionAttendRequest, VisionKeysRequest, VisionReply } from "../api/spread-rpc.ts";
import { KvSequence } from "../kernel/cache.ts";
import type { KernelAdapter } from "../kernel/lora.ts";
import { MAX_VECTORS } from "../kernel/linear-batch.ts";
import { KernelModel, type KernelModelOptions, type WeightSource } from "../kernel/model.ts";
import { AdapterRegistry, storeOver } from "../engine/adapters.ts";
import { InputError } from "../errors.ts";
import type { Manifest, ManifestStage } from "../model/manifest.ts";
import { HeadShard } from "./head-shard.ts";
import { StepQueue } from "./step-queue.ts";
import { SpreadSessions, VisionSessions } from "./spread-stage.ts";

/** Identity of a manifest stage, as the stage contract names it. */
export function stageIdentity(stage: ManifestStage): StageIdentity {
  const attention = stage.kind === "decoder" && stage.attention !== false;
  return { name: stage.name, kind: stage.kind, from: stage.from, to: stage.to, mlp: stage.mlp ?? null, attention };
}

/** A kernel stage's options: the kernel instance's, the sessions it keeps, and the model's adapters. */
export type KernelStageOptions = KernelModelOptions & {
  readonly maxSessions?: number;
  /** Session rows a batched step takes at most (default: 16 where batching shares work, else 1; step-queue.ts). */
  readonly stepBatch?: number;
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
  /** This stage as a head shard: embedding rows, and logits batched across calls arriving together (shared/pipeline/head-shard.ts). */
  private readonly head: HeadShard;
  /** The sequence-parallel prefill's blocks held between calls (shared/pipeline/spread-stage.ts). */
  readonly spread: SpreadSessions;
  private readonly visionBlocks = new VisionSessions();

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
    this.head = new HeadShard(manifest.config.text, stage);
    this.spread = new SpreadSessions({ open: (s, p) => this.openCache(s, p), get: (s) => this.sessions.get(s)?.seq }, manifest.config.text.hidden);
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
    const seq = this.openCache(req.session, req.position, adapter);
    return seq instanceof KvSequence ? this.rowsThrough(model, seq, req, lora) : seq;
  }

  async prefillKeys(req: SpreadKeysRequest): Promise<SpreadReply> {
    return this.spread.keys(await this.spreading(), req);
  }

  async prefillAttend(req: SpreadAttendRequest): Promise<SpreadReply> {
    return this.spread.attend(await this.spreading(), req);
  }

  /** The session's cache of `session` as onnxruntime lays it out ([kvHeads, length, hd] per layer held), or null. */
  readCache(session: string): { length: number; keys: Float32Array[]; values: Float32Array[] } | null {
    const seq = this.sessions.get(session)?.seq;
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

  /**
   * The session's cache continued at `position` under `adapter` (a fresh one at 0: the least recently used
   * dropped past the limit), or the refusal. The sequence-parallel prefill runs the base (adapter null).
   */
  private openCache(session: string, position: number, adapter: string | null = null): KvSequence | (RowsReply & { ok: false }) {
    if (position === 0) {
      this.sessions.get(session)?.seq.clear();
      this.sessions.delete(session);
      while (this.sessions.size >= this.maxSessions) void this.drop([this.sessions.keys().next().value!]);
      this.sessions.set(session, { seq: this.loadedModel!.newSequence(), adapter }); // loaded: every caller awaited the kernel
    }
    this.touch(session);
    const cache = this.sessions.get(session);
    return (this.refusal(cache, position, adapter) as (RowsReply & { ok: false }) | null) ?? cache!.seq;
  }

  /**
   * Steps coalesce (step-queue.ts): calls arriving while a step is pending or running run together as one pass
   * over the weights (KernelModel stepRows, once per adapter among them), up to `stepBatch` rows, each
   * session's numbers exactly those of stepping it alone.
   */
  async step(batch: readonly RowsRequest[]): Promise<RowsReply[]> {
    await this.kernel(["decoder"]);
    batch.forEach((req) => {
      this.checkRows(req);
      if (req.count !== 1) throw new InputError("invalid_request", `a step is one row per session, got ${req.count}`, "count");
    });
    return this.steps.push(batch);
  }

  /** Steps taken: calls of the kernel's batched step and the rows they carried (a batch's size = rows / calls). */
  readonly stepStats = { passes: 0, rows: 0 };
  private readonly steps = new StepQueue((rows) => this.pass(this.loadedModel!, rows), () => this.stepBatchLimit ?? 1);

  /** Session rows a batched step takes at most (see {@link step}); null until the weights are loaded. */
  get stepBatchLimit(): number | null {
    const model = this.loadedModel;
    return model && Math.max(1, this.opts.stepBatch ?? (model.batchedStepsShareWork ? MAX_VECTORS : 1));
  }

  /** One pass of the rows taken from the queue: one kernel pass per adapter among them. */
  private async pass(model: KernelModel, reqs: readonly RowsRequest[]): Promise<RowsReply[]> {
    const replies: RowsReply[] = new Array(reqs.length);
    // One pass per adapter, each run right after its adapter is resolved (nothing can drop it in between).
    for (const adapter of new Set(reqs.map((r) => r.adapter ?? null))) {
      const at = reqs.flatMap((r, i) => ((r.adapter ?? null) === adapter ? [i] : []));
      const lora = adapter === null ? null : await this.lora(model, adapter);
      this.stepNow(model, at.map((i) => reqs[i]), lora).forEach((r, j) => (replies[at[j]] = r));
    }
    return replies;
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
        run.forEach((r, j) => (replies[r.i] = { ok: true, hidden: shipped(reqs[r.i], out[j].hidden), partial: out[j].partial, length: r.temp ? reqs[r.i].position + 1 : r.seq.length }));
      } finally {
        for (const r of run) if (r.temp) r.seq.clear();
      }
    }
    return replies;
  }

  async drop(sessions: readonly string[]): Promise<void> {
    for (const s of sessions) {
      this.spread.drop(s);
      this.sessions.get(s)?.seq.clear();
      this.sessions.delete(s);
    }
  }

  async embed(ids: readonly number[]): Promise<Float32Array> { return this.head.embed(await this.kernel(["head"]), ids); }

  async logits(req: LogitsRequest): Promise<Float32Array> { return this.head.logits(await this.kernel(["head"]), req); }

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
      return { ok: true, hidden: shipped(req, out.hidden), partial: out.partial, length: seq ? s.length : req.position + req.count };
    } finally {
      if (!seq) s.clear();
    }
  }
}

/** The rows a reply carries: none for a `partialOnly` request (a parallel part after the first). */
const shipped = (req: RowsRequest, hidden: Float32Array): Float32Array => (req.partialOnly ? new Float32Array(0) : hidden);
