/**
 * The kernel decode path: per-token decoder steps (and the LM head) run in the kernel module over int8/int4
 * (or fp32/fp16) weights copied into its memory, against a kernel-owned KV cache. onnxruntime keeps the
 * prefill (batched GEMMs); its cache is copied in once, then every step appends in place.
 *
 *   const dec = await KernelDecoder.load(manifest, readFile, embed);
 *   let { state, logits } = await ortRuntime.prefill(soft, ids);   // onnxruntime
 *   ({ state, logits } = dec.step(state, id));                      // kernel, O(1) cache work per token
 */
import { ModelFormatError } from "../errors.ts";
import type { Manifest } from "../model/manifest.ts";
import { stagesOf } from "../model/manifest.ts";
import type { DecoderState, StepResult } from "../engine/types.ts";
import { KvPool, KvSequence } from "./cache.ts";
import { Forward } from "./forward.ts";
import { Linear, type QuantCompute } from "./linear.ts";
import { configuredKernel, instantiateKernel, type Kernel, type KernelFlavor, type KernelModule } from "./module.ts";
import { KernelDecoderState, originOf, pathIds, type TokenPath } from "./state.ts";
import { loadDecoderStage, loadHeadStage, matrixBytes, type KernelHeadSlice, type KernelLayer } from "./weights.ts";

/** Reads a weight file by its manifest name (fetched and checked by the caller's store). */
export type WeightFileReader = (name: string) => Promise<Uint8Array>;

/** Writes the decoder input row of token `id` (embedding · sqrt(H)) into `out` f32[H]. */
export type Embedder = (id: number, out: Float32Array) => void;

export interface KernelDecoderOptions {
  /**
   * Quantised weights: "int8" activations (MatMulNBits accuracy_level 4, fastest) or "float" activations
   * (accuracy_level 0). Default: what the model was converted for, `manifest.weights.accuracyLevel` (4 → int8).
   */
  readonly compute?: QuantCompute;
  /** Sequences whose caches stay resident at once (default 4); older ones are rebuilt when used again. */
  readonly maxSequences?: number;
  /** The compiled kernel (default: the one initKernel set up). */
  readonly kernel?: KernelModule;
}

/** Where the kernel instance's memory goes, in bytes. */
export interface KernelMemoryReport {
  readonly flavor: KernelFlavor;
  readonly codeBytes: number; // the .wasm build (compiled code is of the same order)
  readonly weightBytes: number; // decoder + head weights copied in
  readonly cacheBytes: number; // KV caches of the resident sequences
  readonly scratchBytes: number; // activations and preparation buffers
  readonly memoryBytes: number; // the linear memory's size (never shrinks)
}

export class KernelDecoder {
  private readonly row: Float32Array;

  private constructor(
    readonly manifest: Manifest,
    private readonly kernel: Kernel,
    private readonly forward: Forward,
    private readonly pool: KvPool,
    private readonly embed: Embedder,
    private readonly weightBytes: number,
    private readonly linearScratch: number,
  ) {
    this.row = new Float32Array(manifest.config.text.hidden);
  }

  /** Copies every decoder and head stage's weights into a fresh kernel instance (one file at a time). */
  static async load(manifest: Manifest, readFile: WeightFileReader, embed: Embedder, opts: KernelDecoderOptions = {}): Promise<KernelDecoder> {
    const { dtype, blockSize } = manifest.weights;
    const quantum = dtype === "int4" ? 32 : 16;
    if ((dtype === "int8" || dtype === "int4") && blockSize % quantum !== 0) {
      throw new ModelFormatError(`the kernel decode path needs ${dtype} blocks of a multiple of ${quantum} values (this model has ${blockSize})`);
    }
    const kernel = await instantiateKernel(opts.kernel ?? (await configuredKernel()));
    const layers: KernelLayer[] = [];
    const head: KernelHeadSlice[] = [];
    for (const stage of stagesOf(manifest, "decoder")) layers.push(...loadDecoderStage(manifest, stage, await readFile(stage.weights), kernel.heap));
    for (const stage of stagesOf(manifest, "head")) head.push(loadHeadStage(manifest, stage, await readFile(stage.weights), kernel.heap));
    const t = manifest.config.text;
    const weightBytes = [...layers.flatMap((l) => [l.q, l.k, l.v, l.o, l.gate, l.up, l.down]), ...head.map((h) => h.table)].reduce((a, m) => a + matrixBytes(m), 0);
    const kind = dtype === "int8" ? "q8" : dtype === "int4" ? "q4" : "f32";
    const compute = opts.compute ?? (manifest.weights.accuracyLevel === 4 ? "int8" : "float");
    const linear = new Linear(kernel, { kind, blockSize }, compute, Math.max(t.hidden, t.heads * t.headDim, t.intermediate));
    const forward = new Forward(kernel, manifest.config, layers, head, linear);
    const pool = new KvPool(kernel.heap, t, opts.maxSequences ?? 4);
    return new KernelDecoder(manifest, kernel, forward, pool, embed, weightBytes, linear.scratchBytes);
  }

  /** One generated token against everything before it (any state: a prefill's, or an earlier step's). */
  step(state: DecoderState, id: number): StepResult {
    const { text } = this.manifest.config;
    if (!Number.isInteger(id) || id < 0 || id >= text.vocab) throw new RangeError(`token id ${id} is outside the vocabulary [0, ${text.vocab})`);
    const seq = this.sequenceFor(state);
    const logits = new Float32Array(text.vocab);
    this.feed(seq, id, logits);
    const { origin, path } = originOf(state);
    const next: TokenPath = { id, prev: path };
    return { state: new KernelDecoderState(seq.length, seq, seq.epoch, origin, next, (s) => this.materialize(s)), logits };
  }

  /** Memory held by this decoder's kernel instance. */
  memory(): KernelMemoryReport {
    const { memoryBytes } = this.kernel.heap.stats();
    return {
      flavor: this.kernel.flavor,
      codeBytes: this.kernel.codeBytes,
      weightBytes: this.weightBytes,
      cacheBytes: this.pool.bytes,
      scratchBytes: this.forward.scratchBytes + this.linearScratch,
      memoryBytes,
    };
  }

  /** A sequence holding exactly `state`'s cache, positioned to append after it. */
  private sequenceFor(state: DecoderState): KvSequence {
    if (state instanceof KernelDecoderState && state.isCurrent) {
      const seq = state.seq;
      if (!state.isTip) {
        seq.epoch++; // branching: later positions get overwritten, so states beyond this one go stale
        seq.length = state.length;
      }
      this.pool.touch(seq);
      return seq;
    }
    const seq = this.pool.acquire();
    this.rebuild(seq, state);
    return seq;
  }

  /** Loads the origin of `state` into `seq` and replays the ids fed since. */
  private rebuild(seq: KvSequence, state: DecoderState): void {
    const { origin, path } = originOf(state);
    const ids = pathIds(path);
    seq.load(origin, ids.length + 1);
    for (const id of ids) this.feed(seq, id, null);
    if (seq.length !== state.length) throw new Error(`rebuilt cache has ${seq.length} positions, the state has ${state.length}`);
  }

  private feed(seq: KvSequence, id: number, logits: Float32Array | null): void {
    this.embed(id, this.row);
    this.forward.run(seq, this.row, logits);
  }

  private materialize(s: KernelDecoderState): { keys: Float32Array[]; values: Float32Array[] } {
    let seq = s.seq;
    if (!s.isCurrent) {
      seq = new KvSequence(this.kernel.heap, this.manifest.config.text);
      this.rebuild(seq, s);
    }
    const layers = this.manifest.config.text.layers;
    const read = (table: "keys" | "values") => Array.from({ length: layers }, (_, l) => seq.read(table, l, s.length));
    const out = { keys: read("keys"), values: read("values") };
    if (seq !== s.seq) seq.clear();
    return out;
  }
}
