/**
 * Runs a converted PaliGemma (manifest + stage graphs) with onnxruntime: vision stages → soft tokens;
 * decoder stages over a KV cache (prefill and single steps share one graph per stage); head stages →
 * logits. Sessions are created lazily, once per stage, on first use.
 */
import { InputError, ModelFormatError } from "../errors.ts";
import type { ModelConfig } from "../model/config.ts";
import { graphOf, isMlpPart, parseManifest, stagesOf, type Manifest, type ManifestStage } from "../model/manifest.ts";
import { EmbeddingTable } from "./embedding.ts";
import { fetchFile } from "./files.ts";
import { f32, floatData, GraphSession, type Feeds } from "./ort.ts";
import { attentionMasks, ropeTables } from "./positions.ts";
import { KernelDecoder, type KernelDecoderOptions } from "../kernel/decoder.ts";
import { KernelVision } from "../kernel/vision.ts";
import type { DecoderState, ModelStore, PaliGemmaEngine, PrefillResult, SoftTokens, StepResult } from "./types.ts";

export interface RuntimeOptions {
  /** Check every file's sha256 against the manifest when it is first read (default true). */
  readonly verify?: boolean;
  /**
   * Who runs each decode step (the decoder layers and LM head for one new token): onnxruntime ("ort", the
   * default) or the kernel module ("kernel", shared/kernel/: int8/int4 GEMVs in WASM SIMD, its own copy of
   * the decoder and head weights and a KV cache it owns). The prefill always runs on onnxruntime. "kernel"
   * needs initKernel() (shared/kernel/module.ts) called once per isolate first.
   */
  readonly decode?: "ort" | "kernel";
  /** Options of the kernel decode path. */
  readonly kernel?: KernelDecoderOptions;
  /**
   * Who encodes images: onnxruntime ("ort", the default) or the kernel module ("kernel", shared/kernel/
   * vision.ts: float32 GEMMs with fused multiply-adds, its own float32 copy of the vision weights). "kernel"
   * needs initKernel() too.
   */
  readonly vision?: "ort" | "kernel";
}

/**
 * Whether a stage's onnxruntime session pre-packs its weights: only decoder and head stages, and only when
 * onnxruntime runs the decode steps (single-token GEMVs, ~1.3× faster packed). With the kernel decoding, those
 * sessions serve the prefill only, where packing buys nothing and costs memory; vision never gains from it.
 */
export function prepackFor(kind: ManifestStage["kind"], decode: "ort" | "kernel"): boolean {
  return kind !== "vision" && decode === "ort";
}

export class PaliGemmaRuntime implements PaliGemmaEngine {
  readonly config: ModelConfig;
  private readonly sessions = new Map<string, Promise<GraphSession>>();
  private readonly files = new Map<string, Promise<Uint8Array>>();
  private embedding: Promise<EmbeddingTable> | null = null;
  private kernel: Promise<KernelDecoder> | null = null;
  private kernelVisionP: Promise<KernelVision> | null = null;

  private constructor(
    readonly manifest: Manifest,
    private readonly store: ModelStore,
    private readonly verify: boolean,
    private readonly opts: RuntimeOptions = {},
  ) {
    this.config = manifest.config;
  }

  /** Reads and validates `manifest.json`; no graph is loaded until it is needed. */
  static async load(store: ModelStore, opts: RuntimeOptions = {}): Promise<PaliGemmaRuntime> {
    const bytes = await store.get("manifest.json");
    if (!bytes) throw new Error("the model store has no manifest.json");
    const manifest = parseManifest(JSON.parse(new TextDecoder().decode(bytes)));
    // Planner (issue 11 item 6): stages cut by a layer's MLP have no graph; onnxruntime cannot run such a model.
    if (manifest.stages.some(isMlpPart)) throw new ModelFormatError("this model has MLP-part stages, which only the kernel engine runs");
    return new PaliGemmaRuntime(manifest, store, opts.verify ?? true, opts);
  }

  /** pixel values float32[1, 3, S, S] → soft tokens float32[N, P]. */
  async encodeImage(pixels: Float32Array): Promise<SoftTokens> {
    const { imageTokens: n, vision, projectionDim } = this.config;
    if (pixels.length !== 3 * vision.imageSize ** 2) {
      throw new InputError("invalid_request", `pixel values must be float32[1, 3, ${vision.imageSize}, ${vision.imageSize}]`, "pixel_values");
    }
    if (this.opts.vision === "kernel") return { data: (await this.kernelVision()).encode(pixels), tokens: n, dim: projectionDim };
    let feeds: Feeds = { pixel_values: f32(pixels, [1, 3, vision.imageSize, vision.imageSize]) };
    let out: Float32Array = new Float32Array(0);
    for (const stage of stagesOf(this.manifest, "vision")) {
      const result = await (await this.session(stage)).run(feeds);
      const last = stage.to === vision.layers;
      out = floatData(result[last ? "soft_tokens" : "vision_hidden"]);
      if (!last) feeds = { vision_hidden: f32(out, [n, vision.hidden]) };
    }
    return { data: out, tokens: n, dim: projectionDim };
  }

  async prefill(soft: SoftTokens, ids: readonly number[], opts: { allLogits?: boolean } = {}): Promise<PrefillResult> {
    const hidden = await this.embedPrompt(soft, ids);
    const empty = this.emptyState();
    const { state, output } = await this.runDecoder(empty, hidden, ids.length);
    const rows = opts.allLogits ? output : output.subarray((ids.length - 1) * this.config.text.hidden);
    return { state, logits: await this.head(rows, opts.allLogits ? ids.length : 1) };
  }

  async step(state: DecoderState, id: number): Promise<StepResult> {
    if (this.opts.decode === "kernel") return (await this.kernelDecoder()).step(state, id);
    const table = await this.embeddings();
    const hidden = new Float32Array(this.config.text.hidden);
    table.lookup(id, hidden);
    const next = await this.runDecoder(state, hidden, 1);
    return { state: next.state, logits: await this.head(next.output, 1) };
  }

  /** Decoder input rows: image rows from the soft tokens, text rows = embedding · sqrt(H). */
  private async embedPrompt(soft: SoftTokens, ids: readonly number[]): Promise<Float32Array> {
    const { text, tokens } = this.config;
    const h = text.hidden;
    if (soft.dim !== h) throw new InputError("invalid_request", `soft tokens have width ${soft.dim}, the model needs ${h}`);
    const imageRows = ids.filter((id) => id === tokens.image).length;
    if (imageRows !== soft.tokens) {
      throw new InputError("invalid_request", `the prompt has ${imageRows} image tokens but the image gives ${soft.tokens}`, "input_ids");
    }
    const table = await this.embeddings();
    const out = new Float32Array(ids.length * h);
    // transformers divides image features by sqrt(H) and the decoder multiplies every row by it again.
    const s = Math.fround(Math.sqrt(h));
    let k = 0;
    for (let r = 0; r < ids.length; r++) {
      const row = out.subarray(r * h, (r + 1) * h);
      if (ids[r] === tokens.image) {
        const src = soft.data.subarray(k * h, ++k * h);
        for (let i = 0; i < h; i++) row[i] = Math.fround(Math.fround(src[i] / s) * s);
      } else {
        if (!Number.isInteger(ids[r]) || ids[r] < 0 || ids[r] >= text.vocab) {
          throw new InputError("invalid_request", `token id ${ids[r]} is outside the vocabulary [0, ${text.vocab})`, "input_ids");
        }
        table.lookup(ids[r], row);
      }
    }
    return out;
  }

  private emptyState(): DecoderState {
    const layers = this.config.text.layers;
    return { length: 0, keys: Array.from({ length: layers }, () => new Float32Array(0)), values: Array.from({ length: layers }, () => new Float32Array(0)) };
  }

  /** Runs `length` new rows through every decoder stage against the cache in `state`. */
  private async runDecoder(state: DecoderState, hidden: Float32Array, length: number): Promise<{ state: DecoderState; output: Float32Array }> {
    const t = this.config.text;
    const past = state.length;
    const total = past + length;
    const { cos, sin } = ropeTables(t, past + 1, length);
    const masks = attentionMasks(t, past, length);
    const keys = [...state.keys];
    const values = [...state.values];
    let x = hidden;
    for (const stage of stagesOf(this.manifest, "decoder")) {
      const session = await this.session(stage);
      const feeds: Feeds = {
        hidden: f32(x, [length, t.hidden]),
        rope_cos: f32(cos, [length, t.headDim]),
        rope_sin: f32(sin, [length, t.headDim]),
        mask_global: f32(masks.global, [length, total]),
      };
      if (session.inputNames.includes("mask_sliding")) feeds.mask_sliding = f32(masks.sliding!, [length, total]);
      for (let i = stage.from; i < stage.to; i++) {
        feeds[`past_key_${i}`] = f32(keys[i], [t.kvHeads, past, t.headDim]);
        feeds[`past_value_${i}`] = f32(values[i], [t.kvHeads, past, t.headDim]);
      }
      const out = await session.run(feeds);
      for (let i = stage.from; i < stage.to; i++) {
        keys[i] = floatData(out[`present_key_${i}`]);
        values[i] = floatData(out[`present_value_${i}`]);
        if (keys[i].length !== t.kvHeads * total * t.headDim) throw new Error(`layer ${i}: cache has ${keys[i].length} values, expected ${t.kvHeads}×${total}×${t.headDim}`);
      }
      x = floatData(out.hidden_out);
    }
    return { state: { length: total, keys, values }, output: x };
  }

  /** Final norm + tied head + soft-cap over every head slice → float32[rows, vocab]. */
  private async head(hidden: Float32Array, rows: number): Promise<Float32Array> {
    const { hidden: h, vocab } = this.config.text;
    const logits = new Float32Array(rows * vocab);
    for (const stage of stagesOf(this.manifest, "head")) {
      const out = floatData((await (await this.session(stage)).run({ hidden: f32(hidden, [rows, h]) })).logits);
      const width = stage.to - stage.from;
      for (let r = 0; r < rows; r++) logits.set(out.subarray(r * width, (r + 1) * width), r * vocab + stage.from);
    }
    return logits;
  }

  /** The kernel decode path, loaded on first use (its own copy of the decoder and head weights). */
  kernelDecoder(): Promise<KernelDecoder> {
    this.kernel ??= (async () => {
      const table = await this.embeddings();
      // Head files are cached for the embedding table; decoder files are read again (onnxruntime holds its copy).
      const read = (name: string) => this.files.get(name) ?? fetchFile(this.store, this.manifest, name, this.verify);
      return KernelDecoder.load(this.manifest, read, (id, out) => table.lookup(id, out), this.opts.kernel);
    })();
    this.kernel.catch(() => (this.kernel = null));
    return this.kernel;
  }

  /** The kernel vision path, loaded on first use (reads the vision weight files; onnxruntime never loads them). */
  kernelVision(): Promise<KernelVision> {
    this.kernelVisionP ??= KernelVision.load(this.manifest, (name) => fetchFile(this.store, this.manifest, name, this.verify));
    this.kernelVisionP.catch(() => (this.kernelVisionP = null));
    return this.kernelVisionP;
  }

  private embeddings(): Promise<EmbeddingTable> {
    this.embedding ??= (async () => {
      const heads = stagesOf(this.manifest, "head");
      const files = new Map(await Promise.all(heads.map(async (s) => [s.weights, await this.file(s.weights)] as const)));
      return EmbeddingTable.fromHeads(this.manifest, files);
    })();
    return this.embedding;
  }

  private file(name: string): Promise<Uint8Array> {
    let f = this.files.get(name);
    if (!f) {
      f = fetchFile(this.store, this.manifest, name, this.verify);
      this.files.set(name, f);
    }
    return f;
  }

  private session(stage: ManifestStage): Promise<GraphSession> {
    let s = this.sessions.get(stage.name);
    if (!s) {
      s = (async () => {
        const [graph, weights] = await Promise.all([this.file(graphOf(stage)), this.file(stage.weights)]);
        if (stage.kind !== "head") this.files.delete(stage.weights); // onnxruntime keeps its own copy
        return GraphSession.create(graph, [{ path: stage.weights, data: weights }], { prepack: prepackFor(stage.kind, this.opts.decode ?? "ort") });
      })();
      s.catch(() => this.sessions.delete(stage.name));
      this.sessions.set(stage.name, s);
    }
    return s;
  }
}
