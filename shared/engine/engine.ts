/**
 * The engine of one isolate, its backends chosen once at load: each phase (vision, prefill, decode) runs in the
 * kernel module or in onnxruntime-web. Kernel phases share kernel instances that hold their stages' weights
 * once, streamed in from the store; onnxruntime is only instantiated when a phase asks for it, so the default
 * (everything in the kernel) never creates an onnxruntime instance. Each group of stages loads on first use:
 * the vision worker only ever loads the vision stages, the decoder the decoder and head stages.
 *
 * A prefill's state always lives where the decode steps run: an onnxruntime prefill is adopted into a kernel
 * sequence when the kernel decodes, and a kernel prefill is read out (and released) when onnxruntime decodes.
 */
import { isMlpPart, parseManifest, stagesOf, type Manifest } from "../model/manifest.ts";
import { KernelTextEngine } from "../kernel/engine.ts";
import { KernelModel, type KernelModelOptions } from "../kernel/model.ts";
import type { ByteSource } from "../kernel/stage-file.ts";
import type { KernelAdapter } from "../kernel/lora.ts";
import { AdapterRegistry } from "./adapters.ts";
import { ModelFormatError } from "../errors.ts";
import { PaliGemmaRuntime } from "./runtime.ts";
import type { DecoderState, EngineBackends, EngineMemory, ModelStore, PaliGemmaEngine, PrefillResult, SoftTokens, StepResult } from "./types.ts";

/** Every phase in the kernel module: what the workers run by default. */
export const KERNEL_BACKENDS: EngineBackends = Object.freeze({ vision: "kernel", prefill: "kernel", decode: "kernel" });

export interface EngineOptions {
  readonly backends?: Partial<EngineBackends>;
  /** Check every file's sha256 as it is read (default true). */
  readonly verify?: boolean;
  /** Options of the kernel instances. */
  readonly kernel?: Omit<KernelModelOptions, "verify">;
}

/** Opens a weight file from `store` as a stream when it can, else as bytes. */
export function openFrom(store: ModelStore, manifest: Manifest): (name: string) => Promise<ByteSource> {
  return async (name) => {
    const stream = store.stream ? await store.stream(name) : null;
    const source = stream ?? (await store.get(name));
    if (!source) throw new ModelFormatError(`model ${manifest.id}: file ${name} is missing from the model store`);
    return source;
  };
}

export class Engine implements PaliGemmaEngine {
  readonly config: Manifest["config"];
  readonly backends: EngineBackends;
  private visionModel: Promise<KernelModel> | null = null;
  private text: Promise<KernelTextEngine> | null = null;
  private ort: Promise<PaliGemmaRuntime> | null = null;
  /** The LoRA adapters this model offers (chosen per call by name; the kernel runs them, unmerged). */
  readonly adapters: AdapterRegistry;
  private readonly loaded: KernelModel[] = [];

  private constructor(
    readonly manifest: Manifest,
    private readonly store: ModelStore,
    private readonly opts: EngineOptions,
  ) {
    this.config = manifest.config;
    this.backends = { ...KERNEL_BACKENDS, ...opts.backends };
    this.adapters = new AdapterRegistry(manifest, store);
  }

  /** Reads the manifest; nothing else is loaded until a phase needs it. */
  static async load(store: ModelStore, opts: EngineOptions = {}): Promise<Engine> {
    const manifest = await readManifest(store);
    const backends = { ...KERNEL_BACKENDS, ...opts.backends };
    const ortPhases = (["vision", "prefill", "decode"] as const).filter((p) => backends[p] === "ort");
    if (ortPhases.some((p) => p !== "vision") && manifest.stages.some(isMlpPart)) {
      throw new ModelFormatError("this model has MLP-part stages, which only the kernel engine runs (set prefill and decode to kernel)");
    }
    return new Engine(manifest, store, opts);
  }

  /** Soft tokens of an image; with `adapter`, through its vision tower and projector updates (if it has any). */
  async encodeImage(pixels: Float32Array, opts: { adapter?: string | null } = {}): Promise<SoftTokens> {
    const adapter = opts.adapter && this.adapters.listing(opts.adapter).vision ? opts.adapter : null;
    if (adapter) this.kernelOnly("vision", adapter);
    if (this.backends.vision === "ort") return (await this.onnx()).encodeImage(pixels);
    const { imageTokens: tokens, projectionDim: dim } = this.config;
    const model = await this.kernelVision();
    return { data: await this.withAdapter(model, adapter, (lora) => model.encode(pixels, lora)), tokens, dim };
  }

  /** Prefill, with `adapter`'s updates when given (the state then steps with it too). */
  async prefill(soft: SoftTokens, ids: readonly number[], opts: { allLogits?: boolean; adapter?: string | null } = {}): Promise<PrefillResult> {
    const { prefill, decode } = this.backends;
    const adapter = opts.adapter ?? null;
    if (adapter) (this.kernelOnly("prefill", adapter), this.kernelOnly("decode", adapter));
    if (prefill === "kernel") {
      const text = await this.kernelText();
      const result = await this.withAdapter(text.model, adapter, (lora) => text.prefill(soft, ids, { allLogits: opts.allLogits, lora }));
      if (decode === "kernel") return result;
      const state: DecoderState = { length: result.state.length, keys: result.state.keys, values: result.state.values };
      result.state.release?.();
      return { state, logits: result.logits };
    }
    const result = await (await this.onnx()).prefill(soft, ids, opts);
    return decode === "kernel" ? { state: (await this.kernelText()).adopt(result.state), logits: result.logits } : result;
  }

  /** One step against `state`'s cache, with the adapter it was prefilled with. */
  async step(state: DecoderState, id: number): Promise<StepResult> {
    if (this.backends.decode !== "kernel") return (await this.onnx()).step(state, id);
    const text = await this.kernelText();
    return this.withAdapter(text.model, state.adapter ?? null, (lora) => text.step(state, id, lora));
  }

  memory(): EngineMemory {
    const adapters = this.loaded.flatMap((m) => m.memory().adapters);
    const adapterBytes = adapters.reduce((a, x) => a + x.bytes, 0);
    return { backends: this.backends, kernelWeightBytes: this.kernelWeightBytes, kernelMemoryBytes: this.kernelMemoryBytes, onnxruntime: this.ort !== null, adapterBytes, adapters };
  }

  /**
   * Runs `fn` with adapter `name` loaded into `model` (null: none), checked right before the synchronous kernel
   * call, since another request may have dropped it from the instance's budget in between.
   */
  private async withAdapter<T>(model: KernelModel, name: string | null, fn: (lora: KernelAdapter | null) => T): Promise<T> {
    if (name === null) return fn(null);
    const manifest = await this.adapters.get(name);
    for (;;) {
      const lora = await model.adapter(manifest, this.adapters.opener(name));
      if (!lora.isReleased) return fn(lora);
    }
  }

  private kernelOnly(phase: keyof EngineBackends, adapter: string): void {
    if (this.backends[phase] !== "kernel") throw new ModelFormatError(`adapter ${adapter}: LoRA adapters run in the kernel engine only, and ${phase} is set to ${this.backends[phase]}`);
  }

  /** The kernel instances' reports (loaded ones only). */
  async kernelMemory(): Promise<{ vision: ReturnType<KernelModel["memory"]> | null; text: ReturnType<KernelModel["memory"]> | null }> {
    return { vision: this.visionModel ? (await this.visionModel).memory() : null, text: this.text ? (await this.text).model.memory() : null };
  }

  private kernelWeightBytes = 0;
  private kernelMemoryBytes = 0;

  private kernelVision(): Promise<KernelModel> {
    if (!this.visionModel) {
      const p = this.loadKernel(stagesOf(this.manifest, "vision"));
      p.catch(() => this.visionModel === p && (this.visionModel = null));
      this.visionModel = p;
    }
    return this.visionModel;
  }

  private kernelText(): Promise<KernelTextEngine> {
    if (!this.text) {
      const p = this.loadKernel([...stagesOf(this.manifest, "decoder"), ...stagesOf(this.manifest, "head")]).then((m) => new KernelTextEngine(m));
      p.catch(() => this.text === p && (this.text = null));
      this.text = p;
    }
    return this.text;
  }

  private loadKernel(stages: Manifest["stages"]): Promise<KernelModel> {
    const p = KernelModel.load(this.manifest, stages, openFrom(this.store, this.manifest), { ...this.opts.kernel, verify: this.opts.verify }).then((m) => {
      const r = m.memory();
      this.kernelWeightBytes += r.weightBytes;
      this.kernelMemoryBytes += r.memoryBytes;
      this.loaded.push(m);
      return m;
    });
    return p;
  }

  private onnx(): Promise<PaliGemmaRuntime> {
    this.ort ??= PaliGemmaRuntime.load(this.store, { verify: this.opts.verify, prepack: this.backends.decode === "ort" });
    return this.ort;
  }
}

/** Reads and validates a store's `manifest.json`. */
export async function readManifest(store: ModelStore): Promise<Manifest> {
  const bytes = await store.get("manifest.json");
  if (!bytes) throw new ModelFormatError("the model store has no manifest.json");
  return parseManifest(JSON.parse(new TextDecoder().decode(bytes)));
}
