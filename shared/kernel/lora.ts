/**
 * LoRA adapters in the kernel, unmerged: for an adapted projection W[n, k] the engine adds scale · B(A x) to W x,
 * with A f32[r, k] and B f32[n, r] held beside the base (which stays as stored, shared by every adapter). B is
 * multiplied by the scale once, at load. An adapter in one kernel instance holds only the factors of the stages
 * that instance holds (shared/model/adapter-manifest.ts cuts them like the model: an MLP part gets its rows of
 * gate/up's B and its columns of down's A).
 *
 *   decode (one row):  t[r] = A·x (gemvF32), u[n] = B·t (gemvF32), y += u
 *   prefill / vision:  T[m, r] = X·Aᵀ, Y += T·Bᵀ (gemmW over f32 matrices, the second accumulating)
 */
import { ModelFormatError } from "../errors.ts";
import type { AdapterManifest } from "../model/adapter-manifest.ts";
import type { ManifestStage } from "../model/manifest.ts";
import { Buffers } from "./buffers.ts";
import type { KernelHeap } from "./heap.ts";
import type { Kernel } from "./module.ts";
import { StageFile, type ByteSource, type FileIndex } from "./stage-file.ts";

/** gemmW's float32 weight kind and its accumulate flag (kernels/assembly/gemm-w.ts). */
const W_F32 = 0;
const ACCUMULATE = 1;

/** One adapted matrix's factors in kernel memory: A f32[rank, k] and scale · B f32[n, rank]. */
export interface LoraFactors {
  readonly rank: number;
  readonly n: number;
  readonly k: number;
  readonly a: number;
  readonly b: number;
}

/**
 * The key of a base matrix in an adapter: its name (`dec.l0.attn.q`, `vis.l1.fc1`, `proj`), and for a decoder MLP
 * matrix the first intermediate row of the part it belongs to (`dec.l0.gate@0`).
 */
export function loraKey(name: string, mlpFrom?: number): string {
  return mlpFrom === undefined ? name : `${name}@${mlpFrom}`;
}

const MLP = /^dec\.l\d+\.(gate|up|down)$/;

/** One adapter loaded into one kernel instance. */
export class KernelAdapter {
  private released = false;

  private constructor(
    readonly name: string,
    private readonly factors: ReadonlyMap<string, LoraFactors>,
    /** Bytes of factors in kernel memory. */
    readonly bytes: number,
    private readonly heap: KernelHeap,
    private readonly blocks: readonly number[],
  ) {}

  /**
   * Streams the factors of `stages` (the base stages this instance holds) into `heap`; a stage the adapter does
   * not touch loads nothing.
   */
  static async load(heap: KernelHeap, adapter: AdapterManifest, stages: readonly ManifestStage[], open: (file: string) => Promise<ByteSource>, verify = true): Promise<KernelAdapter> {
    const modules = new Map(adapter.modules.map((m) => [m.name, m]));
    const factors = new Map<string, LoraFactors>();
    const blocks: number[] = [];
    let bytes = 0;
    const source: FileIndex = { id: `${adapter.base}:${adapter.name}`, tensors: adapter.tensors, files: adapter.files, weights: { dtype: "fp32", blockSize: 1, accuracyLevel: 0 } };
    try {
      for (const stage of stages) {
        const entry = adapter.stages.find((s) => s.stage === stage.name);
        if (!entry) continue;
        const file = new StageFile(source, entry.weights, heap);
        const scaled: { b: number; count: number; scale: number }[] = [];
        for (const name of entry.modules) {
          const m = modules.get(name)!;
          const dims = (t: string) => adapter.tensors[entry.weights].find((e) => e.name === `${name}.${t}`)?.dims ?? [];
          const [rank, k] = dims("lora_a");
          const [n] = dims("lora_b");
          if (rank !== m.rank || k === undefined || n === undefined) throw new ModelFormatError(`adapter ${adapter.name}: ${entry.weights} lacks ${name}'s factors of rank ${m.rank}`);
          const a = file.floats(`${name}.lora_a`, [rank, k]);
          const b = file.floats(`${name}.lora_b`, [n, rank]);
          blocks.push(a, b);
          bytes += 4 * rank * (k + n);
          scaled.push({ b, count: n * rank, scale: m.scale });
          factors.set(loraKey(name, MLP.test(name) ? (stage.mlp?.from ?? 0) : undefined), { rank, n, k, a, b });
        }
        await file.fill(await open(entry.weights), verify);
        for (const s of scaled) {
          const v = heap.f32(s.b, s.count);
          const scale = Math.fround(s.scale);
          for (let i = 0; i < v.length; i++) v[i] = Math.fround(v[i] * scale);
        }
      }
    } catch (err) {
      for (const at of blocks) heap.release(at);
      throw err;
    }
    return new KernelAdapter(adapter.name, factors, bytes, heap, blocks);
  }

  /** The factors of base matrix `key` ({@link loraKey}), if this adapter changes it. */
  get(key: string): LoraFactors | undefined {
    if (this.released) throw new Error(`adapter ${this.name} was dropped from this kernel instance`);
    return this.factors.get(key);
  }

  /** Whether its memory was given back. */
  get isReleased(): boolean {
    return this.released;
  }

  /** Gives the factors' kernel memory back. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const at of this.blocks) this.heap.release(at);
  }
}

/** Scratch for the low-rank products: T = X·Aᵀ per named slot (grown on demand, addresses taken at every call). */
export class LoraScratch {
  private readonly buf: Buffers;

  constructor(private readonly kernel: Kernel) {
    this.buf = new Buffers(kernel.heap);
  }

  /** Bytes held. */
  get bytes(): number {
    return this.buf.bytes;
  }

  /** y f32[n] += scale · B(A x) for one row x f32[k] (decode steps). */
  addRow(f: LoraFactors, x: number, y: number): void {
    const ex = this.kernel.exports;
    const t = this.buf.get("t", 4 * f.rank);
    const u = this.buf.get("u", 4 * f.n);
    ex.gemvF32(t, f.a, x, f.rank, f.k);
    ex.gemvF32(u, f.b, t, f.n, f.rank);
    ex.addInto(y, u, f.n);
  }

  /**
   * c[m, n] (ldc floats per row) += scale · (a[m, k] (lda) · Aᵀ) · Bᵀ; `work` holds ≥ m · max(k, rank) floats and
   * `panel` ≥ 8 · max(k, rank) (gemmW's A repack and weight panel).
   */
  addRows(f: LoraFactors, c: number, ldc: number, a: number, lda: number, m: number, work: number, panel: number): void {
    this.project(f, "t", a, lda, m, 0, f.k, false, work, panel);
    this.expand(f, "t", c, ldc, m, 0, f.n, work, panel);
  }

  /** T_slot[m, rank] (+)= a[m, kc] (lda) · A[:, c0 : c0 + kc]ᵀ: the input's projection, over a block of its columns. */
  project(f: LoraFactors, slot: string, a: number, lda: number, m: number, c0: number, kc: number, accumulate: boolean, work: number, panel: number): void {
    const t = this.buf.get(slot, 4 * m * f.rank);
    this.kernel.exports.gemmW(t, f.rank, a, lda, f.a + 4 * c0, 0, W_F32, 1, 0, m, f.rank, kc, accumulate ? ACCUMULATE : 0, work, panel, f.k);
  }

  /** c[m, nr] (ldc) += T_slot · B[r0 : r0 + nr, :]ᵀ: the update of outputs [r0, r0 + nr). */
  expand(f: LoraFactors, slot: string, c: number, ldc: number, m: number, r0: number, nr: number, work: number, panel: number): void {
    const t = this.buf.get(slot, 4 * m * f.rank);
    this.kernel.exports.gemmW(c, ldc, t, f.rank, f.b + 4 * r0 * f.rank, 0, W_F32, 1, 0, m, nr, f.rank, ACCUMULATE, work, panel, f.rank);
  }
}
