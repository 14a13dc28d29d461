/**
 * Node harness for route tests: the real decoder and vision Hono apps (`app.request`, no server) wired to
 * in-process fakes of their bindings: a Map-backed KV, the real session logic ({@link SessionHost}) in place of
 * Durable Objects, and the real encode path with a {@link FakeEngine} (or any engine) instead of ONNX.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { PaliGemmaEngine } from "../../../shared/engine/types.ts";
import { parseManifest, type Manifest } from "../../../shared/model/manifest.ts";
import { PaliGemmaTokenizer } from "../../../shared/text/tokenizer.ts";
import { servingModel, type ServingModel } from "../../../shared/worker/serving-model.ts";
import { SoftTokenStore } from "../../../shared/worker/soft-token-store.ts";
import { createDecoderApp } from "../../../functions/decoder/app.ts";
import type { DecoderDeps } from "../../../functions/decoder/deps.ts";
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
  readonly stored: Map<string, SessionRecord>;
  /** Drops a session's in-memory state, keeping its stored record (what eviction does). */
  evict(name: string): void;
}

/** Builds a harness over `engine` (default: a FakeEngine with `options`). */
export async function createHarness(
  opts: { engine?: PaliGemmaEngine; fake?: FakeEngineOptions; maxNewTokens?: number; now?: () => number } = {},
): Promise<Harness & { engine: PaliGemmaEngine }> {
  const manifest = shapesManifest();
  const engine = opts.engine ?? new FakeEngine(manifest.config, opts.fake);
  const model = await servingModel(manifest, engine, shapesTokenizer(manifest));
  const kv = new MemoryKV();
  const store = new SoftTokenStore(kv.asKV(), { ttlSeconds: 3600 });
  const encodeDeps: EncodeDeps = { model: async () => model, store, maxPixels: 16_000_000 };
  const visionApp = createVisionApp(() => encodeDeps);
  const sessions = new Map<string, SessionHost>();
  const stored = new Map<string, SessionRecord>();
  const host = (name: string): SessionHost => {
    let h = sessions.get(name);
    if (!h) {
      h = new SessionHost(
        { model: async () => model, softTokens: (id) => store.get(id), now: opts.now ?? (() => performance.now()) },
        { save: async (r) => void stored.set(name, r), clear: async () => void stored.delete(name) },
        stored.get(name) ?? null,
      );
      sessions.set(name, h);
    }
    return h;
  };
  const deps: DecoderDeps = {
    modelId: manifest.id,
    maxNewTokens: opts.maxNewTokens ?? 512,
    encodeImage: (bytes) => encodeReply(encodeDeps, bytes),
    forwardImage: (req) => Promise.resolve(visionApp.request(req)),
    session: (name) => ({
      generate: (req) => host(name).generate(req),
      describe: async () => host(name).describe(),
      reset: () => host(name).clear(),
    }),
  };
  const app = createDecoderApp(() => deps);
  return { app, visionApp, kv, model, engine, sessions, stored, evict: (name) => void sessions.delete(name) };
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
