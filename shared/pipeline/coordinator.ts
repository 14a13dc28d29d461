/**
 * The coordinator of a model served as a pipeline of stages (one isolate each): a {@link PaliGemmaEngine} whose
 * layers live behind the stage contract (shared/api/stage-rpc.ts), so the session Durable Object decodes through
 * it exactly as through a whole-model engine.
 *
 *   prompt ids ──embed──▶ head shards holding them   (rows cached here, a few hundred at most)
 *   rows [L, H] ──prefill──▶ decoder stages in layer order; the parts of a cut layer: the attention part first,
 *                 the other parts in parallel on its output, their sums combined in part order (combineParts);
 *                 a parallel cut's parts (each holding the attention) all at once on the layer's input, one hop
 *   last row ──logits──▶ every head shard in parallel → logits f32[vocab], assembled in vocabulary order
 *
 * Exactness: every stage runs the same kernel code on the same rows as a whole-model engine (the prefill's GEMMs,
 * the steps' GEMVs, the last row scored by the decode path's GEMVs), so a model cut by layers and vocabulary gives
 * the same float32 logits bit for bit; the head shards return their float32 logits unchanged and the unmodified
 * sampler runs here on the assembled vector, so greedy and seeded sampling (temperature, top-k, top-p, stop) and
 * logprobs are those of the single-isolate path by construction. Shipping per-shard candidates + log-sum-exp
 * instead would change the sampler's float64 sums over the vocabulary (taken in id order), so logprobs and seeded
 * draws could differ in the last bits; 4 bytes per vocabulary row per token (1 MB for 257,216 rows, spread over
 * the shards) is well inside RPC's 32 MiB. A layer cut into MLP parts sums the parts in a fixed order, so its
 * results are deterministic, though not bitwise those of the uncut layer (one dot product over I becomes parts).
 * A parallel cut gives bitwise the sequential cut's numbers: each part runs the attention block's code on the
 * layer's input, so its h' is the attention part's, and its MLP slice of h' is the sequential part's.
 *
 * LoRA adapters: the adapter's name goes with every prefill and step call (and with the vision calls of an adapter
 * that changes the vision tower or projector); each stage applies its own layers' factors (convert-adapter cut
 * them like the model) and keys its session caches by adapter. A sequence remembers its adapter, so steps and
 * replays use it too. Head shards never see it (adapters on the embeddings or the tied head are refused).
 *
 * Faults: a stage that answers `missing`/`behind` lost the session's cache (it restarted): the sequence is
 * replayed (the prompt's prefill, then every generated id fed back, the same calls as the first time, so the same
 * numbers) and the step goes on. A stage that stays unreachable is a 503 (stage-client.ts).
 */
import type { RowsReply, RowsRequest, StageInfo, StageRpc } from "../api/stage-rpc.ts";
import { KERNEL_BACKENDS } from "../engine/engine.ts";
import { combineParts } from "../engine/parts.ts";
import { promptRows } from "../engine/prompt-rows.ts";
import type { DecoderState, EngineMemory, PaliGemmaEngine, PrefillResult, SoftTokens, StepResult } from "../engine/types.ts";
import { ServiceError } from "../errors.ts";
import { adapterListing } from "../engine/adapters.ts";
import type { ModelConfig } from "../model/config.ts";
import { stagesOf, type Manifest, type ManifestStage } from "../model/manifest.ts";
import { decoderGroups, type LayerGroup } from "./groups.ts";
import { PipelineSequence, PipelineState } from "./sequence.ts";
import { callRows, DEFAULT_CALL_CPU_MS, SpreadPrefiller } from "./spread.ts";
import { spreadVision } from "./spread-vision.ts";
import { CacheLost, CallCounter, settled, StageClient, type CallPolicy } from "./stage-client.ts";

/** Options of a pipeline engine. */
export interface PipelineOptions extends CallPolicy {
  /** Embedding rows kept in the coordinator (default 512: 4.7 MB at H = 2304). */
  readonly embedCacheRows?: number;
  /** Names a new sequence in the stages (default: a random UUID). */
  readonly newKey?: () => string;
  /**
   * Further replicas of a decoder or vision stage (isolates holding the same weights; none by default): a
   * prompt's rows (sequence-parallel prefill, shared/pipeline/spread.ts) and an image's patches
   * (shared/pipeline/spread-vision.ts) are then spread over the stage and its replicas.
   */
  readonly replicas?: (stage: ManifestStage) => readonly StageRpc[];
  /** CPU budget of one prefill stage call, ms (default {@link DEFAULT_CALL_CPU_MS}); longer prompts go in blocks. */
  readonly prefillCallMs?: number;
}

/** Replays of a lost cache tried before a request gives up with a 503. */
const REPLAY_ATTEMPTS = 3;

export class PipelineEngine implements PaliGemmaEngine {
  readonly config: ModelConfig;
  /** Every stage call made, by method. */
  readonly calls = new CallCounter();
  /** Sequences rebuilt by replay after a stage lost them. */
  replays = 0;
  private readonly groups: LayerGroup<StageClient>[];
  private readonly head: StageClient[];
  private readonly vision: StageClient[];
  private readonly embedCache = new Map<number, Float32Array>();
  private loaded: Promise<void> | null = null;

  /**
   * @param connect the stage contract of each stage (a service binding, an in-process kernel stage); undefined
   *   for a stage this worker has no binding for (the vision worker binds only the vision stages)
   */
  constructor(
    readonly manifest: Manifest,
    connect: (stage: ManifestStage) => StageRpc | undefined,
    private readonly opts: PipelineOptions = {},
  ) {
    this.config = manifest.config;
    const client = (s: ManifestStage) => new StageClient(s, connect(s), this.calls, opts);
    this.groups = decoderGroups(stagesOf(manifest, "decoder")).map((g) => ({ ...g, first: client(g.first), rest: g.rest.map(client) }));
    this.head = stagesOf(manifest, "head").map(client);
    this.vision = stagesOf(manifest, "vision").map(client);
    const replicas = new Map(this.groups.flatMap((g) => [g.first, ...g.rest]).map((c) => [c, [c, ...(opts.replicas?.(c.stage) ?? []).map((r) => new StageClient(c.stage, r, this.calls, opts))]]));
    this.spread = new SpreadPrefiller(this.groups, (c) => replicas.get(c)!, this.config);
    this.spreading = [...replicas.values()].some((r) => r.length > 1);
    this.visionReplicas = this.vision.map((c) => [c, ...(opts.replicas?.(c.stage) ?? []).map((r) => new StageClient(c.stage, r, this.calls, opts))]);
  }

  /** Each vision stage's replicas, its own client first (an image is spread over them when there are several). */
  private readonly visionReplicas: StageClient[][];

  private readonly spread: SpreadPrefiller;
  /** Whether some stage has replicas (every prefill is then spread). */
  private readonly spreading: boolean;

  /** Rows one prefill call may take through one layer, for a prompt of `count` rows. */
  private callRows(count: number): number {
    return callRows(this.config, count, this.opts.prefillCallMs ?? DEFAULT_CALL_CPU_MS);
  }

  /**
   * The prompt's rows through the decoder: spread over replicas and blocks when either is due, else one call per
   * stage. A LoRA adapter's prefill takes one call per stage (the spread passes run the base).
   */
  private prefillRows(seq: PipelineSequence, input: Float32Array, count: number): Promise<Float32Array> {
    const maxRows = this.callRows(count);
    const layers = Math.max(...this.groups.map((g) => g.first.stage.to - g.first.stage.from));
    if (seq.adapter || (!this.spreading && count * layers <= maxRows)) return this.through(seq, input, count, 0, "prefill");
    return this.spread.run(seq.key, input, count, 0, maxRows);
  }

  /** Every decoder and head stage's client, in manifest order. */
  get textStages(): readonly StageClient[] {
    return [...this.groups.flatMap((g) => [g.first, ...g.rest]), ...this.head];
  }

  /** Loads every decoder and head stage (in parallel), once; a failed load is tried again next time. */
  load(): Promise<void> {
    if (!this.loaded) {
      const p = (async () => {
        const norms = await Promise.all(this.groups.map(async (g) => (await Promise.all([g.first, ...g.rest].map((s) => s.call("load"))))[0].postFfNorm));
        norms.forEach((n, i) => (this.groups[i].postFfNorm = n));
        await Promise.all(this.head.map((s) => s.call("load")));
      })();
      p.catch(() => this.loaded === p && (this.loaded = null));
      this.loaded = p;
    }
    return this.loaded;
  }

  /**
   * Every text stage's state, asked in parallel (the reachability check a request makes before its stream
   * starts). @throws ServiceError 503 when a stage does not answer.
   */
  check(): Promise<StageInfo[]> {
    return Promise.all(this.textStages.map((s) => s.call("describe")));
  }

  /** Soft tokens through the vision stages; with `adapter`, its vision updates (when it has any). */
  async encodeImage(pixels: Float32Array, opts: { adapter?: string | null } = {}): Promise<SoftTokens> {
    const adapter = opts.adapter && adapterListing(this.manifest, opts.adapter).vision ? opts.adapter : null;
    let x = pixels;
    if (!adapter && this.visionReplicas.some((r) => r.length > 1)) x = await spreadVision(this.visionReplicas, pixels, this.config);
    else for (const s of this.vision) x = await (adapter ? s.call("vision", x, adapter) : s.call("vision", x));
    return { data: x, tokens: this.config.imageTokens, dim: this.config.projectionDim };
  }

  /** Prefill through every decoder stage, with `adapter` when given (the state's steps then use it too). */
  async prefill(soft: SoftTokens, ids: readonly number[], opts: { allLogits?: boolean; adapter?: string | null } = {}): Promise<PrefillResult> {
    const adapter = opts.adapter ?? null;
    if (adapter !== null) adapterListing(this.manifest, adapter); // a 404 naming an unknown one, before any call
    await this.load();
    const h = this.config.text.hidden;
    const rows = await this.embedded(ids.filter((id) => id !== this.config.tokens.image));
    const input = promptRows(this.config, soft, ids, (id, out) => out.set(rows.get(id)!));
    const seq = new PipelineSequence(this.opts.newKey?.() ?? crypto.randomUUID(), input, ids.length, (key) => this.dropEverywhere(key), adapter);
    try {
      const out = await this.rebuildOnLoss(seq, () => this.prefillRows(seq, input, ids.length));
      const logits = opts.allLogits ? await this.scores(out, ids.length, true) : await this.scores(out.subarray((ids.length - 1) * h), 1, false);
      return { state: new PipelineState(ids.length, seq, seq.epoch, true), logits };
    } catch (err) {
      seq.release();
      throw err;
    }
  }

  async step(state: DecoderState, id: number): Promise<StepResult> {
    const { vocab } = this.config.text;
    if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new RangeError(`token id ${id} is outside the vocabulary [0, ${vocab})`);
    if (!(state instanceof PipelineState)) throw new Error("the pipeline engine steps only from its own states");
    if (!state.isCurrent) throw new Error("this decoder state is stale: its sequence was cut back or released since");
    const seq = state.seq;
    seq.truncate(state.length);
    const row = (await this.embedded([id])).get(id)!;
    const position = state.length;
    const out = await this.rebuildOnLoss(seq, () => this.through(seq, row, 1, position, "step"));
    seq.tokens.push(id);
    return { state: new PipelineState(seq.length, seq, seq.epoch, false), logits: await this.scores(out, 1, false) };
  }

  memory(): EngineMemory {
    return { backends: KERNEL_BACKENDS, kernelWeightBytes: 0, kernelMemoryBytes: 0, onnxruntime: false };
  }

  /** Rows f32[count, H] at cache position `position` through every decoder stage, in layer order. */
  private async through(seq: PipelineSequence, rows: Float32Array, count: number, position: number, kind: "prefill" | "step"): Promise<Float32Array> {
    const ask = async (s: StageClient, x: Float32Array, partialOnly = false): Promise<RowsReply & { ok: true }> => {
      const req: RowsRequest = { session: seq.key, position, rows: x, count, ...(seq.adapter ? { adapter: seq.adapter } : {}), ...(partialOnly ? { partialOnly } : {}) };
      const reply = kind === "prefill" ? await s.call("prefill", req) : (await s.call("step", [req]))[0];
      if (!reply.ok) throw new CacheLost(s.stage.name);
      return reply;
    };
    let x = rows;
    for (const g of this.groups) {
      if (g.parallel) {
        // One hop: every part attends to x (the same h' bit for bit; the first part's comes back) and runs its slice.
        const parts = await settled([g.first, ...g.rest].map((s, i) => ask(s, x, i > 0)));
        x = combineParts(parts[0].hidden, parts.map((r) => r.partial!), g.postFfNorm, this.config.text.rmsNormEps);
        continue;
      }
      const a = await ask(g.first, x);
      if (a.partial === null) {
        x = a.hidden;
        continue;
      }
      const rest = await Promise.all(g.rest.map((s) => ask(s, a.hidden)));
      x = combineParts(a.hidden, [a.partial, ...rest.map((r) => r.partial!)], g.postFfNorm, this.config.text.rmsNormEps);
    }
    return x;
  }

  /** Runs `work`; when a stage lost the sequence's cache, replays the sequence up to now and runs it once more. */
  private async rebuildOnLoss<T>(seq: PipelineSequence, work: () => Promise<T>): Promise<T> {
    let lost: CacheLost;
    try {
      return await work();
    } catch (err) {
      if (!(err instanceof CacheLost)) throw err;
      lost = err;
    }
    // A replay can itself lose the race to another session's new cache at a full stage: try a few times.
    for (let attempt = 0; attempt < REPLAY_ATTEMPTS; attempt++) {
      console.warn(`${lost.message}: replaying ${seq.length} positions`);
      this.replays++;
      try {
        await this.through(seq, seq.rows, seq.count, 0, "prefill");
        for (const [i, id] of seq.tokens.entries()) await this.through(seq, (await this.embedded([id])).get(id)!, 1, seq.count + i, "step");
        return await work();
      } catch (err) {
        if (!(err instanceof CacheLost)) throw err;
        lost = err;
      }
    }
    throw new ServiceError("unavailable", `${lost.message} again while it was rebuilt; retry later`, this.opts.retryAfterS ?? 5);
  }


  /** Logits f32[count, vocab] of final rows, every head shard in parallel. */
  private async scores(rows: Float32Array, count: number, all: boolean): Promise<Float32Array> {
    const vocab = this.config.text.vocab;
    const parts = await Promise.all(this.head.map((s) => s.call("logits", { rows, count, all })));
    const out = new Float32Array(count * vocab);
    this.head.forEach((s, i) => {
      const width = s.stage.to - s.stage.from;
      if (parts[i].length !== count * width) throw new Error(`head shard ${s.stage.name} gave ${parts[i].length} logits for ${count} × ${width}`);
      for (let r = 0; r < count; r++) out.set(parts[i].subarray(r * width, (r + 1) * width), r * vocab + s.stage.from);
    });
    return out;
  }

  /** The embedding rows (· sqrt(H)) of `ids`, from the cache or the head shards holding them. */
  private async embedded(ids: readonly number[]): Promise<Map<number, Float32Array>> {
    const h = this.config.text.hidden;
    const out = new Map<number, Float32Array>();
    const wanted = new Map<StageClient, number[]>();
    for (const id of new Set(ids)) {
      const hit = this.embedCache.get(id);
      if (hit) {
        this.embedCache.delete(id); // most recently used last
        this.embedCache.set(id, hit);
        out.set(id, hit);
        continue;
      }
      const shard = this.head.find((s) => id >= s.stage.from && id < s.stage.to);
      if (!shard) throw new RangeError(`token id ${id} is outside the vocabulary [0, ${this.config.text.vocab})`);
      wanted.set(shard, [...(wanted.get(shard) ?? []), id]);
    }
    await Promise.all(
      [...wanted].map(async ([shard, want]) => {
        const rows = await shard.call("embed", want);
        want.forEach((id, r) => out.set(id, rows.slice(r * h, (r + 1) * h)));
      }),
    );
    const cap = this.opts.embedCacheRows ?? 512;
    for (const [id, row] of out) {
      if (this.embedCache.has(id) || cap <= 0) continue;
      if (this.embedCache.size >= cap) this.embedCache.delete(this.embedCache.keys().next().value!);
      this.embedCache.set(id, row);
    }
    return out;
  }

  /** Frees a sequence's caches in every attention stage; failures are logged (the stage restarted anyway). */
  private dropEverywhere(key: string): void {
    for (const s of this.groups.flatMap((g) => [g.first, ...g.rest]).filter((s) => s.stage.attention !== false)) {
      s.call("drop", [key]).catch((err) => console.warn(`dropping ${key} in ${s.stage.name}:`, err));
    }
  }
}
