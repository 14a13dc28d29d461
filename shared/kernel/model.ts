/**
 * One kernel instance holding some stages of a model, weights loaded once in their stored format and streamed
 * in (StageFile): the vision tower, decoder layers (or parts of them) and head slices. It embeds tokens from
 * the tied head it holds, prefills rows, steps one token, and encodes images. This is the engine of one isolate:
 * the whole model when it fits, one stage of a pipeline otherwise.
 */
import { ModelFormatError } from "../errors.ts";
import type { Manifest, ManifestStage } from "../model/manifest.ts";
import { KvSequence } from "./cache.ts";
import { declareDecoderStage, declareHeadStage, mergeLayers, type HeadSlice, type LayerSlice } from "./decoder-weights.ts";
import { Forward, widestPart } from "./forward.ts";
import type { GemmCompute } from "./gemm.ts";
import { ForwardBatch, type BatchOut } from "./forward-batch.ts";
import { Linear, type QuantCompute } from "./linear.ts";
import { batchSharesWork } from "./linear-batch.ts";
import { matrixBytes, readRow, type KernelMatrix } from "./matrix.ts";
import { configuredKernel, instantiateKernel, type Kernel, type KernelFlavor, type KernelModule } from "./module.ts";
import { Prefill, type RowsOut } from "./prefill.ts";
import { SpreadPrefill } from "./prefill-spread.ts";
import { VisionSpread } from "./vision-spread.ts";
import { StageFile, type ByteSource } from "./stage-file.ts";
import { VisionTower } from "./vision.ts";
import { AdapterCache } from "./adapter-cache.ts";
import { KernelAdapter } from "./lora.ts";
import type { AdapterManifest } from "../model/adapter-manifest.ts";
import { declareVisionStage, type VisionSlice } from "./vision-weights.ts";

/** Opens a weight file by its manifest name (a stream, or bytes). */
export type WeightSource = (name: string) => Promise<ByteSource>;

export interface KernelModelOptions {
  /**
   * Quantised weights in decode steps: "int8" activations (MatMulNBits accuracy_level 4, fastest) or "float"
   * (accuracy_level 0). Default: what the model was converted for, `manifest.weights.accuracyLevel` (4 → int8).
   */
  readonly compute?: QuantCompute;
  /**
   * Quantised weights in prefill and vision GEMMs (gemm.ts): "int8" (default) int4 weights against rows
   * quantised per 32 k to int8 at run time (int8 weights as "int16"), "int8-a8" int8 weights too (gemm-q8.ts;
   * flips one golden's greedy ids, so not the default), "int16" integer dot products on rows
   * quantised per block to int16, "int7" to 7 bits with 8-bit dot products; "float" panels
   * dequantised to float32 (accuracy_level 0). fp32 weights always run the float32 GEMM.
   */
  readonly gemm?: GemmCompute;
  /** The compiled kernel (default: the one initKernel set up). */
  readonly kernel?: KernelModule;
  /** Check each file's sha256 while it streams in (default true). */
  readonly verify?: boolean;
  /** Most positions one KV sequence may hold (0 = no limit). */
  readonly maxPositions?: number;
  /** Intermediate columns the prefill's MLP computes at a time (default prefill.ts MLP_COLUMNS). */
  readonly mlpColumns?: number;
  /** Budget for the LoRA factors held at once (default adapter-cache.ts DEFAULT_ADAPTER_BYTES). */
  readonly maxAdapterBytes?: number;
}

/** Where the kernel instance's memory goes, in bytes. */
export interface KernelMemoryReport {
  readonly flavor: KernelFlavor;
  readonly codeBytes: number; // the .wasm build (compiled code is of the same order)
  readonly weightBytes: number; // weights in kernel memory
  readonly scratchBytes: number; // activations and preparation buffers (now)
  readonly liveBytes: number; // every live allocation (weights, scratch, KV sequences)
  readonly memoryBytes: number; // the linear memory's size (never shrinks)
  readonly adapterBytes: number; // LoRA factors of the adapters held
  readonly adapters: readonly { readonly name: string; readonly bytes: number }[]; // least recently used first
}

export class KernelModel {
  private forwardP: Forward | null = null;
  private prefillP: Prefill | null = null;
  private visionP: VisionTower | null = null;
  private batchP: ForwardBatch | null = null;
  private spreadP: SpreadPrefill | null = null;
  private visionSpreadP: VisionSpread | null = null;
  private readonly row: Float32Array;
  private readonly normaliser: number;
  private readonly adapters: AdapterCache;

  private constructor(
    readonly manifest: Manifest,
    readonly kernel: Kernel,
    readonly layers: readonly LayerSlice[],
    readonly head: readonly HeadSlice[],
    readonly vision: readonly VisionSlice[],
    /** The manifest stages this instance holds. */
    readonly stages: readonly ManifestStage[],
    private readonly linear: Linear | null,
    private readonly weightBytes: number,
    private readonly maxPositions: number,
    private readonly opts: KernelModelOptions,
  ) {
    this.row = new Float32Array(manifest.config.text.hidden);
    this.normaliser = Math.fround(Math.sqrt(manifest.config.text.hidden));
    this.adapters = new AdapterCache(opts.maxAdapterBytes);
  }

  /**
   * Streams `stages` (any mix of vision, decoder and head stages of `manifest`) into a fresh kernel instance,
   * one file at a time: each file's tensors are placed first, then the file flows through once.
   */
  static async load(manifest: Manifest, stages: readonly ManifestStage[], open: WeightSource, opts: KernelModelOptions = {}): Promise<KernelModel> {
    const { dtype, blockSize } = manifest.weights;
    const quantum = dtype === "int4" ? 32 : 16;
    if ((dtype === "int8" || dtype === "int4") && blockSize % quantum !== 0) {
      throw new ModelFormatError(`the kernel needs ${dtype} blocks of a multiple of ${quantum} values (this model has ${blockSize})`);
    }
    const kernel = await instantiateKernel(opts.kernel ?? (await configuredKernel()));
    const slices: LayerSlice[] = [];
    const head: HeadSlice[] = [];
    const vision: VisionSlice[] = [];
    const matrices: KernelMatrix[] = [];
    for (const stage of stages) {
      const file = new StageFile(manifest, stage.weights, kernel.heap);
      if (stage.kind === "decoder") {
        const s = declareDecoderStage(manifest, stage, file);
        slices.push(...s);
        matrices.push(...s.flatMap((l) => [...(l.attention ? [l.attention.q, l.attention.k, l.attention.v, l.attention.o] : []), ...l.parts.flatMap((p) => [p.gate, p.up, p.down])]));
      } else if (stage.kind === "head") {
        const h = declareHeadStage(manifest, stage, file);
        head.push(h);
        matrices.push(h.table);
      } else {
        const v = declareVisionStage(manifest, stage, file);
        vision.push(v);
        matrices.push(...v.layers.flatMap((l) => [l.q, l.k, l.v, l.o, l.fc1, l.fc2].map((x) => x.m)), ...(v.embed ? [v.embed.patch.m] : []), ...(v.head ? [v.head.proj.m] : []));
      }
      await file.fill(await open(stage.weights), opts.verify ?? true);
    }
    const layers = mergeLayers(slices, manifest.config.text.intermediate);
    if (layers.some((l) => !l.complete) && layers.length > 1) throw new ModelFormatError("an engine holding part of a layer's MLP holds that one layer only");
    head.sort((a, b) => a.from - b.from);
    vision.sort((a, b) => a.from - b.from);
    const t = manifest.config.text;
    let linear: Linear | null = null;
    if (layers.length > 0 || head.length > 0) {
      const kind = dtype === "int8" ? "q8" : dtype === "int4" ? "q4" : "f32";
      const compute = opts.compute ?? (manifest.weights.accuracyLevel === 4 ? "int8" : "float");
      linear = new Linear(kernel, { kind, blockSize }, compute, Math.max(t.hidden, t.heads * t.headDim, widestPart(layers)));
    }
    const weightBytes = matrices.reduce((a, m) => a + matrixBytes(m), 0);
    return new KernelModel(manifest, kernel, layers, head, vision, [...stages], linear, weightBytes, opts.maxPositions ?? 0, opts);
  }

  /**
   * LoRA adapter `adapter` for the stages held here: held already, or its factors streamed in from `open` (files
   * of the adapter's folder); the least recently used adapters are dropped past the budget.
   */
  adapter(adapter: AdapterManifest, open: WeightSource): Promise<KernelAdapter> {
    if (adapter.base !== this.manifest.id) throw new ModelFormatError(`adapter ${adapter.name} is for model ${adapter.base}, not ${this.manifest.id}`);
    return this.adapters.get(adapter.name, () => KernelAdapter.load(this.kernel.heap, adapter, this.stages, open, this.opts.verify ?? true));
  }

  /** A new, empty KV sequence for this engine's attention layers (its owner frees it with `clear()`). */
  newSequence(): KvSequence {
    const layers = this.layers.filter((l) => l.attention).map((l) => l.index);
    return new KvSequence(this.kernel.heap, this.manifest.config.text, layers, this.maxPositions);
  }

  /** Writes embed(id) · sqrt(H) (float32, as Gemma scales its inputs) into `out[0..H)`, from the tied head held here. */
  embed(id: number, out: Float32Array): void {
    const slice = this.head.find((s) => id >= s.from && id < s.to);
    if (!slice) throw new RangeError(`token id ${id} is outside the vocabulary rows this engine holds`);
    readRow(this.kernel.heap.memory.buffer, slice.table, id - slice.from, out);
    for (let i = 0; i < out.length; i++) out[i] = Math.fround(out[i] * this.normaliser);
  }

  /** Prefill rows through this engine's (whole) decoder layers into `seq`; returns the output rows f32[rows, H]. */
  prefillRows(seq: KvSequence, hidden: Float32Array, rows: number, lora: KernelAdapter | null = null): Float32Array {
    const out = this.stageRows(seq, hidden, rows, undefined, lora);
    if (out.partial) throw new Error("this engine holds part of a layer's MLP: use stageRows");
    return out.hidden;
  }

  /**
   * Rows through this engine's decoder layers, appended to `seq`: the output rows, and for an engine holding
   * part of a layer's MLP its parts' sum (the rows then are the attention block's output, or the input);
   * written to `into`'s arrays when given (a stage reusing its output buffers across calls).
   */
  stageRows(seq: KvSequence, hidden: Float32Array, rows: number, into?: RowsOut, lora: KernelAdapter | null = null): { hidden: Float32Array; partial: Float32Array | null } {
    this.prefillP ??= new Prefill(this.kernel, this.manifest.config, this.layers, this.opts.mlpColumns, this.opts.gemm);
    return this.prefillP.run(seq, hidden, rows, undefined, into, lora);
  }

  /** The sequence-parallel prefill's passes over this engine's decoder layers (prefill-spread.ts). */
  spread(): SpreadPrefill {
    this.prefillP ??= new Prefill(this.kernel, this.manifest.config, this.layers, this.opts.mlpColumns, this.opts.gemm);
    this.spreadP ??= new SpreadPrefill(this.prefillP, this.kernel, this.manifest.config, this.layers);
    return this.spreadP;
  }

  /** Logits f32[rows, vocab] of hidden rows f32[rows, H] through this engine's head slices. */
  headRows(hidden: Float32Array, rows: number): Float32Array {
    this.prefillP ??= new Prefill(this.kernel, this.manifest.config, this.layers, this.opts.mlpColumns, this.opts.gemm);
    return this.prefillP.headRows(this.head, hidden, rows);
  }

  /** Appends token `id` to `seq` through every layer and writes the next-token logits into `logits` (f32[vocab]). */
  step(seq: KvSequence, id: number, logits: Float32Array | null, lora: KernelAdapter | null = null): void {
    this.embed(id, this.row);
    this.forward().run(seq, this.row, logits, {}, lora);
  }

  /**
   * One row (f32[H]) through this engine's decoder layers, appended to `seq`: the row after them, and for an
   * engine holding part of a layer's MLP its parts' sum (see {@link stageRows}).
   */
  stepRow(seq: KvSequence, row: Float32Array, lora: KernelAdapter | null = null): { hidden: Float32Array; partial: Float32Array | null } {
    const h = this.manifest.config.text.hidden;
    const out = { hidden: new Float32Array(h), partial: this.layers.some((l) => !l.complete) ? new Float32Array(h) : undefined };
    this.forward().run(seq, row, null, out, lora);
    return { hidden: out.hidden, partial: out.partial ?? null };
  }

  /**
   * One row per sequence through this engine's decoder layers, appended to each, in one pass over the weights
   * (forward-batch.ts): bit-identical to {@link stepRow} on each sequence alone (with the same `lora`).
   */
  stepRows(seqs: readonly KvSequence[], rows: readonly Float32Array[], lora: KernelAdapter | null = null): BatchOut[] {
    if (seqs.length !== rows.length) throw new Error(`${seqs.length} sequences for ${rows.length} rows`);
    return this.batch().run(seqs, rows, lora);
  }

  /**
   * Whether {@link stepRows} shares work between its rows (linear-batch.ts `batchSharesWork`); when not, a batch
   * of B rows costs about B single steps.
   */
  get batchedStepsShareWork(): boolean {
    return this.linear ? batchSharesWork(this.linear.compute, this.kernel.flavor) : true;
  }

  private batch(): ForwardBatch {
    if (!this.linear) throw new Error("this engine holds no decoder layers or head");
    const { dtype, blockSize } = this.manifest.weights;
    const kind = dtype === "int8" ? "q8" : dtype === "int4" ? "q4" : "f32";
    this.batchP ??= new ForwardBatch(this.kernel, this.manifest.config, this.layers, { kind, blockSize }, this.linear.compute);
    return this.batchP;
  }

  /**
   * Logits of several final rows (each f32[H]) in one pass over the head slices held here: `outs[b]` gets row b's
   * logits of ids [base, base + length), bit-identical to {@link logitsOf}.
   */
  logitsRows(rows: readonly Float32Array[], outs: readonly Float32Array[], base = 0): void {
    this.batch().logits(this.head, rows, outs, base);
  }

  /** The post-feed-forward norm weight (1 + w) of decoder layer `layer` held here, f32[H]; null for Gemma 1. */
  postFfNorm(layer: number): Float32Array | null {
    const l = this.layers.find((x) => x.index === layer);
    if (!l) throw new RangeError(`this engine holds no part of decoder layer ${layer}`);
    return l.postFfNorm === null ? null : this.kernel.heap.f32(l.postFfNorm, this.manifest.config.text.hidden).slice();
  }

  /** Logits f32[vocab] of one final hidden row f32[H] (final norm, head slices, soft-cap), through GEMVs. */
  logitsOf(row: Float32Array, out: Float32Array): void {
    this.forward().logitsOf(row, out);
  }

  /** This engine's vision stages over pixels (first stage) or rows f32[N, D]: rows out, or soft tokens at the last. */
  visionStage(input: Float32Array, lora: KernelAdapter | null = null): Float32Array {
    this.visionP ??= new VisionTower(this.kernel, this.manifest.config, this.vision, this.opts.gemm);
    return this.visionP.stage(input, lora);
  }

  /** This engine's vision stages run by blocks of rows (vision-spread.ts). */
  visionSpread(): VisionSpread {
    return (this.visionSpreadP ??= new VisionSpread(this.kernel, this.manifest.config, this.vision, this.opts.gemm));
  }

  /** pixel values float32[1, 3, S, S] → soft tokens float32[N, P]. */
  encode(pixels: Float32Array, lora: KernelAdapter | null = null): Float32Array {
    this.visionP ??= new VisionTower(this.kernel, this.manifest.config, this.vision, this.opts.gemm);
    return this.visionP.encode(pixels, lora);
  }

  /** Memory held by this kernel instance. */
  memory(): KernelMemoryReport {
    const { liveBytes, memoryBytes } = this.kernel.heap.stats();
    const scratch = (this.forwardP?.scratchBytes ?? 0) + (this.batchP?.scratchBytes ?? 0) + (this.prefillP?.scratchBytes ?? 0) + (this.visionP?.scratchBytes ?? 0) + (this.linear?.scratchBytes ?? 0);
    const adapters = this.adapters.held();
    return { flavor: this.kernel.flavor, codeBytes: this.kernel.codeBytes, weightBytes: this.weightBytes, scratchBytes: scratch, liveBytes, memoryBytes, adapterBytes: this.adapters.bytes, adapters };
  }

  private forward(): Forward {
    if (!this.linear) throw new Error("this engine holds no decoder layers or head");
    this.forwardP ??= new Forward(this.kernel, this.manifest.config, this.layers, this.head, this.linear);
    return this.forwardP;
  }
}
