/**
 * The generation logic of one session, free of Durable Object APIs (so it runs in Node tests as well):
 * resolve the image → its soft tokens (memory, else the request's own from the vision worker, else KV) → prompt ids → prefill (or reuse the cached prefill of
 * the same image + prompt) → decode loop → session events.
 *
 * Prefix cache, and why only this much (PaliGemma's prefix-LM, docs/model-notes.md, "Attention and positions"):
 * image tokens attend bidirectionally to the prompt, so their keys/values in layers ≥ 1 depend on the prompt and
 * cannot be reused for a different one. A session keeps (1) the image's soft tokens in memory, so a new prompt
 * about the same image costs no KV read and no vision encode, and (2) the prefill result of the last prompt, so
 * repeating exactly the same image + prompt costs no prefill at all.
 */
import type { PrefixCacheReport, RunInfo, SessionEvent, TopLogprob } from "../../shared/api/events.ts";
import type { EngineMemory, PaliGemmaEngine, PrefillResult, SoftTokens } from "../../shared/engine/types.ts";
import { errorData, InputError } from "../../shared/errors.ts";
import { GenerationAborted, generate, type GenerationResult } from "../../shared/generation/generate.ts";
import { vocabMask } from "../../shared/model/vocab.ts";
import { withAdapter } from "../../shared/engine/adapted.ts";
import { buildPromptIds } from "../../shared/text/prompt.ts";
import { tokenPiece } from "../../shared/text/token-piece.ts";
import type { PaliGemmaTokenizer } from "../../shared/text/tokenizer.ts";
import type { ServingModel } from "../../shared/worker/serving-model.ts";
import { decodeEncoded, type SoftTokenHeader } from "../../shared/worker/soft-token-store.ts";
import type { MaskDecoder } from "../../shared/masks/loader.ts";
import { DEFAULT_SESSION_LIMITS, type SessionLimits } from "./limits.ts";
import { segmentMasks } from "./segment-masks.ts";
import type { LastRun, SessionRecord, SessionRequest } from "./session-types.ts";

/** What a session needs from the outside world. */
export interface SessionCoreDeps {
  readonly model: () => Promise<ServingModel>;
  readonly softTokens: (imageId: string) => Promise<{ header: SoftTokenHeader; soft: SoftTokens } | null>;
  readonly save: (record: SessionRecord) => Promise<void>;
  readonly now: () => number;
  /** The model's VQ-VAE mask decoder, null when it has none (absent: masks are never decoded). */
  readonly masks?: () => Promise<MaskDecoder | null>;
  /** Prompt and context limits (defaults: {@link DEFAULT_SESSION_LIMITS}). */
  readonly limits?: Pick<SessionLimits, "maxPromptTokens" | "contextTokens">;
}

/** In-memory state: rebuilt from the record (image id) and KV after an eviction. */
interface Memory {
  readonly imageId: string;
  readonly owner: string;
  /** The model the soft tokens were encoded for: the base's id, or `<base>:<adapter>` for a vision adapter. */
  readonly visionModel: string;
  readonly soft: SoftTokens; // [tokens, dim]
  readonly size: { readonly width: number; readonly height: number } | null; // the original image's
  /** The last prompt's prefill, and the adapter it was made with (null: the base). */
  prefix: { readonly ids: readonly number[]; readonly adapter: string | null; readonly prefill: PrefillResult } | null;
}

/** A request that passed every check, ready to stream. */
export interface PreparedRun {
  readonly info: RunInfo;
  readonly events: AsyncGenerator<SessionEvent, void, void>;
}

/** One session's state and generation. Callers serialise calls (one request at a time). */
export class SessionCore {
  private memory: Memory | null = null;
  private last: LastRun | null = null;
  private engine: PaliGemmaEngine | null = null;

  /** @param record what the session stored before (null for a new session) */
  constructor(
    private readonly deps: SessionCoreDeps,
    private record: SessionRecord | null,
  ) {}

  /** Resolves image and prompt, stores the record, and returns the event stream. Throws InputError. */
  async prepare(req: SessionRequest, signal: AbortSignal): Promise<PreparedRun> {
    const t0 = this.deps.now();
    const model = await this.deps.model();
    this.engine = model.engine;
    const { manifest, tokenizer } = model;
    if (!tokenizer) throw new Error(`model ${manifest.id} ships no tokenizer; the API needs one`);
    const imageId = req.imageId ?? this.record?.image_id;
    if (imageId === undefined) {
      if (req.named) {
        throw new InputError("not_found", `session "${req.session}" is unknown or expired; send an image to start it`, "session");
      }
      throw new InputError("invalid_request", "no image: send image or image_id (a session remembers its last image)", "image");
    }
    const ids = buildPromptIds(tokenizer, req.prompt, manifest.config.imageTokens, manifest.config.tokens, req.promptSpans);
    this.checkLimits(ids.length, manifest.config.imageTokens, req.sampling.maxTokens);
    const owner = req.owner ?? "";
    const adapter = req.adapter ?? null;
    const modelId = adapter ? `${manifest.id}:${adapter}` : manifest.id;
    const visionModel = adapter && req.visionAdapter ? modelId : manifest.id;
    const softHit = this.memory?.imageId === imageId && this.memory.owner === owner && this.memory.visionModel === visionModel;
    if (!softHit) {
      // The request's own soft tokens (computed by the vision worker just now) when it carries them, else KV.
      const inline = req.softTokens?.header.image_id === imageId ? decodeEncoded(req.softTokens) : null;
      const fresh = this.checkSoftTokens(model, imageId, owner, visionModel, inline ?? (await this.deps.softTokens(imageId)));
      this.releaseCache();
      this.memory = { imageId, owner, visionModel, ...fresh, prefix: null };
    }
    const memory = this.memory!;
    const same = memory.prefix !== null && memory.prefix.adapter === adapter && sameIds(memory.prefix.ids, ids);
    const cached = same ? memory.prefix!.prefill : undefined;
    // A session holds one prefill cache: another prompt's goes before this one is prefilled, not after it is
    // answered (in a pipeline, stages keep a few sessions' caches and two per session would evict others').
    if (!cached) this.releaseCache();
    const cache: PrefixCacheReport = {
      soft_tokens: softHit ? "hit" : "miss",
      kv: cached ? "hit" : "miss",
      cached_tokens: cached ? ids.length : 0,
    };
    this.record = { v: 1, model: modelId, image_id: imageId, prompt_ids: ids, updated_at: Date.now() };
    if (req.session !== null) await this.deps.save(this.record); // only named sessions persist
    const info: RunInfo = { session: req.session, model: modelId, image_id: imageId, prompt_tokens: ids.length, image_size: memory.size };
    return { info, events: this.run(model, memory, ids, req, signal, { t0, cache, cached, adapter }) };
  }

  /** How the last generation ended. */
  get lastRun(): LastRun | null {
    return this.last;
  }

  /** The engine this session decodes with (for diagnostics); null before its first request. */
  get engineInfo(): EngineMemory | null {
    return this.engine?.memory?.() ?? null;
  }

  /** What is held in memory (for diagnostics). */
  get memoryInfo(): { image_id: string; prefix_tokens: number; cache_bytes: number; adapter?: string } | null {
    if (!this.memory) return null;
    const prefix = this.memory.prefix;
    const adapter = prefix?.adapter ? { adapter: prefix.adapter } : {}; // the held prefill's adapter, when it has one
    return { image_id: this.memory.imageId, prefix_tokens: prefix?.ids.length ?? 0, cache_bytes: prefix?.prefill.state.bytes ?? 0, ...adapter };
  }

  /** The stored record. */
  get stored(): SessionRecord | null {
    return this.record;
  }

  /** Forgets everything (the session expired or was deleted), giving its KV cache back. */
  clear(): void {
    this.releaseCache();
    this.memory = null;
    this.record = null;
  }

  /** Frees the kernel memory of the prefix cache this session holds. */
  private releaseCache(): void {
    this.memory?.prefix?.prefill.state.release?.();
    if (this.memory) this.memory.prefix = null;
  }

  /** 422 for a prompt over the token limit, or a prompt + max_tokens over the model's context. */
  private checkLimits(promptTokens: number, imageTokens: number, maxTokens: number): void {
    const { maxPromptTokens, contextTokens } = this.deps.limits ?? DEFAULT_SESSION_LIMITS;
    const text = promptTokens - imageTokens;
    if (text > maxPromptTokens) {
      throw new InputError("unprocessable", `the prompt is ${text} tokens, over the limit of ${maxPromptTokens}`, "prompt", "context_length_exceeded");
    }
    if (promptTokens + maxTokens > contextTokens) {
      throw new InputError(
        "unprocessable",
        `the prompt (${promptTokens} tokens with the image) plus max_tokens (${maxTokens}) exceeds the model's context of ${contextTokens} tokens`,
        "max_tokens",
        "context_length_exceeded",
      );
    }
  }

  /** Checks the soft tokens found for `imageId` (inline or from KV) against the owner and the (vision) model. */
  private checkSoftTokens(
    model: ServingModel,
    imageId: string,
    owner: string,
    visionModel: string,
    entry: { header: SoftTokenHeader; soft: SoftTokens } | null,
  ): Pick<Memory, "soft" | "size"> {
    if (entry === null || (entry.header.owner ?? "") !== owner) {
      throw new InputError(
        "not_found",
        `image ${imageId} is not stored (unknown, or its soft tokens expired from KV); send the image itself again`,
        "image_id",
      );
    }
    const { header, soft } = entry;
    const want = model.manifest.softTokens;
    if (header.model !== visionModel || header.scaling !== want.scaling || soft.tokens !== want.tokens || soft.dim !== want.dim) {
      const hint = visionModel !== model.manifest.id || header.model.startsWith(`${model.manifest.id}:`) ? " (an adapter that changes the vision tower needs its own soft tokens: send the image itself, or upload it with ?model=<model>)" : "";
      throw new InputError("unprocessable", `image ${imageId} was encoded for model ${header.model}, not ${visionModel}${hint}`, "image_id");
    }
    const size = header.width && header.height ? { width: header.width, height: header.height } : null;
    return { soft, size };
  }

  private async *run(
    model: ServingModel,
    memory: Memory,
    ids: readonly number[],
    req: SessionRequest,
    signal: AbortSignal,
    ctx: { t0: number; cache: PrefixCacheReport; cached: PrefillResult | undefined; adapter: string | null },
  ): AsyncGenerator<SessionEvent, void, void> {
    const { manifest, tokenizer } = model;
    const engine = withAdapter(model.engine, ctx.adapter);
    const s = req.sampling;
    let produced = 0;
    let finish: LastRun["finish_reason"] = "aborted";
    try {
      const tStart = this.deps.now();
      const tokens = generate(engine, memory.soft, ids, {
        sampling: { temperature: s.temperature, topK: s.topK ?? 0, topP: s.topP },
        seed: s.seed ?? Math.floor(Math.random() * 2 ** 32),
        maxTokens: s.maxTokens,
        eos: [manifest.config.tokens.eos],
        stop: s.stop,
        mask: vocabMask(manifest),
        topLogprobs: s.topLogprobs ?? 0,
        tokenizer,
        signal,
        prefilled: ctx.cached,
        now: this.deps.now,
      });
      let result: GenerationResult;
      for (;;) {
        const next = await tokens.next();
        if (next.done) {
          result = next.value;
          break;
        }
        produced++;
        const { top, ...token } = next.value;
        if (!top || !tokenizer) yield { type: "token", token };
        else yield { type: "token", token: { ...token, top_logprobs: top.map((t) => topLogprob(tokenizer, t.id, t.logprob)) } };
      }
      if (memory.prefix && memory.prefix.prefill !== result.prefill) memory.prefix.prefill.state.release?.(); // the session owns one cache
      memory.prefix = { ids, adapter: ctx.adapter, prefill: result.prefill };
      finish = result.finishReason;
      const tMasks = this.deps.now();
      const masks = req.masks ? await segmentMasks(result.text, memory.size, this.deps.masks) : undefined;
      const tEnd = this.deps.now();
      const t = result.timings;
      yield {
        type: "done",
        done: {
          finish_reason: result.finishReason,
          text: result.text,
          ids: result.ids,
          usage: {
            prompt_tokens: ids.length,
            completion_tokens: result.ids.length,
            total_tokens: ids.length + result.ids.length,
            prefix_cache: ctx.cache,
            timings: {
              time_to_first_token_ms: round(tStart - ctx.t0 + t.timeToFirstTokenMs),
              prefill_ms: round(t.prefillMs),
              decode_ms: round(t.decodeMs),
              total_ms: round(tEnd - ctx.t0),
              tokens_per_second: round(t.tokensPerSecond),
              ...(masks ? { masks_ms: round(tEnd - tMasks) } : {}),
            },
          },
          ...(masks ? { masks } : {}),
        },
      };
    } catch (err) {
      if (err instanceof GenerationAborted || signal.aborted) return;
      finish = "error";
      const error = errorData(err);
      if (error.status >= 500) console.error(`session generate (request ${req.requestId ?? "?"}):`, err);
      yield { type: "error", error };
    } finally {
      this.last = { finish_reason: finish, completion_tokens: produced };
    }
  }
}

function topLogprob(tok: PaliGemmaTokenizer, id: number, logprob: number): TopLogprob {
  const { text, bytes } = tokenPiece(tok, id);
  return { id, token: text, logprob, bytes };
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
