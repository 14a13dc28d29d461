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

  private constructor(
    readonly manifest: Manifest,
    private readonly store: ModelStore,
    private readonly opts: EngineOptions,
  ) {
    this.config = manifest.config;
    this.backends = { ...KERNEL_BACKENDS, ...opts.backends };
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

  async encodeImage(pixels: Float32Array): Promise<SoftTokens> {
    if (this.backends.vision === "ort") return (await this.onnx()).encodeImage(pixels);
    const { imageTokens: tokens, projectionDim: dim } = this.config;
    return { data: (await this.kernelVision()).encode(pixels), tokens, dim };
  }

  async prefill(soft: SoftTokens, ids: readonly number[], opts: { allLogits?: boolean } = {}): Promise<PrefillResult> {
    const { prefill, decode } = this.backends;
    if (prefill === "kernel") {
      const result = (await this.kernelText()).prefill(soft, ids, opts);
      if (decode === "kernel") return result;
      const state: DecoderState = { length: result.state.length, keys: result.state.keys, values: result.state.values };
      result.state.release?.();
      return { state, logits: result.logits };
    }
    const result = await (await this.onnx()).prefill(soft, ids, opts);
    return decode === "kernel" ? { state: (await this.kernelText()).adopt(result.state), logits: result.logits } : result;
  }

  async step(state: DecoderState, id: number): Promise<StepResult> {
    return this.backends.decode === "kernel" ? (await this.kernelText()).step(state, id) : (await this.onnx()).step(state, id);
  }

  memory(): EngineMemory {
    return { backends: this.backends, kernelWeightBytes: this.kernelWeightBytes, kernelMemoryBytes: this.kernelMemoryBytes, onnxruntime: this.ort !== null };
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
