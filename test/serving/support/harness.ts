/**
 * Node harness for route tests: the real decoder and vision Hono apps (`app.request`, no server) wired to
 * in-process fakes of their bindings: a Map-backed KV, the real session logic ({@link SessionHost}) in place of
 * Durable Objects, and the real encode path with a {@link FakeEngine} (or any engine) instead of ONNX.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { PaliGemmaEngine } from "../../../shared/engine/types.ts";
import type { MaskDecoder } from "../../../shared/masks/loader.ts";
import { parseManifest, type Manifest } from "../../../shared/model/manifest.ts";
import { PaliGemmaTokenizer } from "../../../shared/text/tokenizer.ts";
import { servingModel, type ServingModel } from "../../../shared/worker/serving-model.ts";
import { SoftTokenStore } from "../../../shared/worker/soft-token-store.ts";
import { parseApiKeys } from "../../../shared/worker/auth.ts";
import { TokenBucket } from "../../../shared/worker/token-bucket.ts";
import { createDecoderApp } from "../../../functions/decoder/app.ts";
import type { DecoderDeps, SessionApi } from "../../../functions/decoder/deps.ts";
import type { DecoderEnv } from "../../../functions/decoder/env.ts";
import { decoderLimits, DEFAULT_SESSION_LIMITS, type SessionLimits } from "../../../functions/decoder/limits.ts";
import { SessionHost } from "../../../functions/decoder/session-host.ts";
import type { SessionRecord } from "../../../functions/decoder/session-types.ts";
import { createVisionApp } from "../../../functions/vision/app.ts";
import { encodeReply, type EncodeDeps } from "../../../functions/vision/encode.ts";
import { REPO, SHAPES_MODEL } from "../../helpers/golden.ts";
import { FakeEngine, type FakeEngineOptions } from "./fake-engine.ts";
import { MemoryKV } from "./memory-kv.ts";

/** The committed default model's folder. */
export const MODEL_DIR = join(REPO, "model-shards/paligemma-shapes");

/** The default model's manifest. */
export function shapesManifest(): Manifest {
  return parseManifest(JSON.parse(readFileSync(join(MODEL_DIR, "manifest.json"), "utf8")));
}

/** The default model's tokenizer. */
export function shapesTokenizer(manifest = shapesManifest()): PaliGemmaTokenizer {
  const spec = manifest.tokenizer!;
  const json = JSON.parse(readFileSync(join(MODEL_DIR, spec.file), "utf8"));
  const cfg = spec.configFile ? JSON.parse(readFileSync(join(MODEL_DIR, spec.configFile), "utf8")) : undefined;
  return PaliGemmaTokenizer.fromJson(json, cfg);
}

/** An eval image of the shapes model (../shared/models/paligemma-shapes/eval). */
export function evalImage(name: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(readFileSync(join(SHAPES_MODEL, "eval", name)));
}

/** A test deployment: both apps and everything behind them. */
export interface Harness {
  readonly app: ReturnType<typeof createDecoderApp>;
  readonly visionApp: ReturnType<typeof createVisionApp>;
  readonly kv: MemoryKV;
  readonly model: ServingModel;
  readonly sessions: Map<string, SessionHost>;
  /** The transient sessions of unnamed requests, in order. */
  readonly transient: readonly SessionHost[];
  readonly stored: Map<string, SessionRecord>;
  /** The rate-limit keys taken, in order ("ip:…" or "key:…"). */
  readonly rateKeys: string[];
  /** The app's request log, one JSON line per request. */
  readonly logs: string[];
  /** Drops a session's in-memory state, keeping its stored record (what eviction does). */
  evict(name: string): void;
}

/** Harness settings; `vars` are the decoder's wrangler vars (limits, API_KEYS, CORS_ORIGINS, rate limit). */
export interface HarnessOptions {
  readonly engine?: PaliGemmaEngine;
  readonly fake?: FakeEngineOptions;
  readonly maxNewTokens?: number;
  readonly now?: () => number;
  readonly vars?: Partial<Record<keyof DecoderEnv, string>>;
  readonly session?: Partial<SessionLimits>;
  readonly maxPixels?: number;
  /** The sessions' mask decoder (default: none, so masks stay null). */
  readonly masks?: () => Promise<MaskDecoder | null>;
  /** Fetches remote image URLs (default: none can be reached, there is no network in tests). */
  readonly fetch?: DecoderDeps["fetch"];
  /** Wraps the vision worker's encode (fault injection). */
  readonly encode?: (real: DecoderDeps["encodeImage"]) => DecoderDeps["encodeImage"];
}

/** Builds a harness over `engine` (default: a FakeEngine with `options`); rate limiting is off unless `vars` set it. */
export async function createHarness(opts: HarnessOptions = {}): Promise<Harness & { engine: PaliGemmaEngine }> {
  const manifest = shapesManifest();
  const engine = opts.engine ?? new FakeEngine(manifest.config, opts.fake);
  const model = await servingModel(manifest, engine, shapesTokenizer(manifest));
  const kv = new MemoryKV();
  const store = new SoftTokenStore(kv.asKV(), { ttlSeconds: 3600 });
  const vars = { RATE_LIMIT_RPM: "0", MAX_NEW_TOKENS: String(opts.maxNewTokens ?? 512), ...opts.vars };
  const limits = decoderLimits(vars as Partial<DecoderEnv>);
  const encodeDeps: EncodeDeps = { model: async () => model, store, maxBytes: limits.maxImageBytes, maxPixels: opts.maxPixels ?? 16_000_000 };
  const sessionLimits = { ...DEFAULT_SESSION_LIMITS, ...opts.session };
  const buckets = new Map<string, TokenBucket>();
  const rateKeys: string[] = [];
  const visionApp = createVisionApp(() => encodeDeps);
  const sessions = new Map<string, SessionHost>();
  const transient: SessionHost[] = [];
  const stored = new Map<string, SessionRecord>();
  const newHost = (name: string): SessionHost =>
    new SessionHost(
      { model: async () => model, masks: opts.masks, softTokens: (id) => store.get(id), now: opts.now ?? (() => performance.now()) },
      { save: async (r) => void stored.set(name, r), clear: async () => void stored.delete(name) },
      stored.get(name) ?? null,
      sessionLimits,
    );
  const host = (name: string): SessionHost => {
    let h = sessions.get(name);
    if (!h) sessions.set(name, (h = newHost(name)));
    return h;
  };
  const api = (h: () => SessionHost): SessionApi => ({
    generate: (req) => h().generate(req),
    cancel: async (runId) => h().cancel(runId),
    describe: async () => h().describe(),
    reset: () => h().clear(),
  });
  let transients = 0;
  const realEncode: DecoderDeps["encodeImage"] = (bytes, options) => encodeReply(encodeDeps, bytes, options);
  const deps: DecoderDeps = {
    modelId: manifest.id,
    adapters: async () => manifest.adapters ?? [],
    limits,
    apiKeys: () => parseApiKeys(vars.API_KEYS),
    rateLimit: async (key, limit) => {
      rateKeys.push(key);
      let bucket = buckets.get(key);
      if (!bucket) buckets.set(key, (bucket = new TokenBucket()));
      return bucket.take(limit, Date.now());
    },
    encodeImage: opts.encode ? opts.encode(realEncode) : realEncode,
    fetch: opts.fetch ?? (async () => Promise.reject(new TypeError("no network in tests"))),
    describeVision: async () => ({ model: manifest.id, engine: model.engine.memory?.() ?? null }),
    session: (name) => api(() => host(name)),
    // Like a fresh Durable Object id: reachable by no name (kept in `transient`, not `sessions`); what it would
    // store would land in `stored` under "(transient n)".
    transientSession: () => {
      const h = newHost(`(transient ${++transients})`);
      transient.push(h);
      return api(() => h);
    },
  };
  const logs: string[] = [];
  const app = createDecoderApp(() => deps, { log: (line) => void logs.push(line) });
  return { app, visionApp, kv, model, engine, sessions, transient, stored, rateKeys, logs, evict: (name) => void sessions.delete(name) };
}

/** A JSON POST. */
export function post(app: { request: (path: string, init: RequestInit) => Response | Promise<Response> }, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return Promise.resolve(
    app.request(path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) }),
  );
}

/** base64 of bytes. */
export function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}
