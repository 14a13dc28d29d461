/**
 * The session Durable Object: one per conversation (`x-session-id` / `session`), owning that conversation's
 * in-memory image soft tokens and prefill cache. A thin shell over {@link SessionHost}: it restores the stored
 * record in `blockConcurrencyWhile`, exposes typed RPC methods, and expires idle sessions with an alarm.
 *
 * Storage layout (SQLite-backed, key-value API): `"session"` → {@link SessionRecord} (image id + prompt ids).
 * After an eviction the next request re-reads the soft tokens from KV by that image id and prefills again.
 * Only named sessions store anything: a request without a session id runs in a fresh object
 * (`newUniqueId()`, request `session: null`) that writes no record and sets no alarm.
 */
import { DurableObject } from "cloudflare:workers";
import { intVar } from "../../shared/worker/env-vars.ts";
import { loadMaskDecoder, type MaskDecoder } from "../../shared/masks/loader.ts";
import { ModelCache } from "../../shared/worker/model-cache.ts";
import { modelStoreFor, type ModelEnv } from "../../shared/worker/model-store.ts";
import type { ServingModel } from "../../shared/worker/serving-model.ts";
import { SoftTokenStore } from "../../shared/worker/soft-token-store.ts";
import { backendVar, workersModel } from "../../shared/worker/workers-model.ts";
import { checkedPipelineModel, isPipelined } from "../../shared/worker/pipeline-model.ts";
import { DECODER_DEFAULTS, sessionLimits, type SessionLimits, type SessionLimitsEnv } from "./limits.ts";
import { SessionHost, type SessionStorage } from "./session-host.ts";
import type { SessionInfo, SessionRecord, SessionReply, SessionRequest } from "./session-types.ts";

/** Read-only models of this isolate, shared by the sessions it hosts (no per-session data). */
const models = new ModelCache<ServingModel>();
/** Their VQ-VAE mask decoders (read-only weights, ~5 MB), loaded by the first answer with segments. */
const maskDecoders = new ModelCache<MaskDecoder | null>();

const RECORD_KEY = "session";

/** The bindings and vars a session reads: the model, the soft tokens and its limits. */
export interface SessionEnv extends ModelEnv, SessionLimitsEnv {
  /** "kernel" (default): the prefill in the WASM SIMD kernel module (kernels/); "ort": in onnxruntime-web. */
  readonly PREFILL?: string;
  /** "kernel" (default): decode steps in the kernel module; "ort": in onnxruntime-web. */
  readonly DECODE?: string;
  /** Soft tokens written by the vision worker. */
  readonly SOFT_TOKENS: KVNamespace;
}

/** One conversation's state and serialised generation. */
export class SessionObject extends DurableObject<SessionEnv> {
  private host: SessionHost | null = null;

  constructor(ctx: DurableObjectState, env: SessionEnv) {
    super(ctx, env);
    void ctx.blockConcurrencyWhile(async () => {
      const stored = await ctx.storage.get<SessionRecord>(RECORD_KEY);
      const record = stored?.v === 1 ? stored : null;
      const kv = new SoftTokenStore(env.SOFT_TOKENS, { ttlSeconds: 60 });
      this.host = new SessionHost(
        { model: () => this.loadModel(), masks: () => this.loadMasks(), softTokens: (id) => kv.get(id), now: () => performance.now() },
        this.storage(),
        record,
        this.limits(),
      );
    });
  }

  /** The session limits (wrangler vars; overridden in tests for short timeouts). */
  protected limits(): SessionLimits {
    return sessionLimits(this.env);
  }

  /** The model this session decodes with (overridden in tests to inject a fake engine). */
  protected loadModel(): Promise<ServingModel> {
    // A model cut into stage workers (STAGE_* service bindings): this session coordinates them (shared/pipeline/).
    if (isPipelined(this.env)) return checkedPipelineModel(models, this.env, { tokenizer: true });
    // PREFILL / DECODE = "ort" run that phase on onnxruntime-web instead of the kernel module (the default).
    return workersModel(models, this.env, { tokenizer: true, backends: { prefill: backendVar(this.env.PREFILL), decode: backendVar(this.env.DECODE) } });
  }

  /** The model's mask decoder (null without `manifest.vae`), read from the same store as the model. */
  protected async loadMasks(): Promise<MaskDecoder | null> {
    const { manifest } = await this.loadModel();
    const vae = manifest.vae ? manifest.files[manifest.vae.file].sha256 : "none";
    return maskDecoders.get(`${this.env.MODEL_SOURCE ?? "assets"}:${manifest.id}:${vae}`, () => loadMaskDecoder(modelStoreFor(this.env), manifest));
  }

  /** Generates for one request; the reply's stream carries NDJSON session events. */
  async generate(req: SessionRequest): Promise<SessionReply> {
    const reply = await this.ready().generate(req);
    if (req.session === null) return reply; // transient (an unnamed request): no record, no alarm
    const ttl = intVar(this.env.SESSION_TTL_S, DECODER_DEFAULTS.sessionTtlSeconds, "SESSION_TTL_S");
    await this.ctx.storage.setAlarm(Date.now() + ttl * 1000);
    return reply;
  }

  /** Stops run `runId` if it is still going (the decoder worker saw its client go away). */
  async cancel(runId: string): Promise<void> {
    this.ready().cancel(runId);
  }

  /** The session's stored record, memory and lock state. */
  async describe(): Promise<SessionInfo> {
    return this.ready().describe();
  }

  /** Deletes the session's stored state and memory. */
  async reset(): Promise<void> {
    await this.ready().clear();
    await this.ctx.storage.deleteAlarm();
  }

  /** Idle expiry. */
  override async alarm(): Promise<void> {
    await this.ready().clear();
  }

  private ready(): SessionHost {
    if (!this.host) throw new Error("session used before its state was restored");
    return this.host;
  }

  private storage(): SessionStorage {
    const storage = this.ctx.storage;
    return {
      save: (record) => storage.put(RECORD_KEY, record),
      clear: () => storage.deleteAll(),
    };
  }
}
