/**
 * Copies a converted model's decoder and head weights into a kernel instance's memory, once. The kernel owns
 * these copies; the weight files can be dropped afterwards. Matrices are stored row-major [N, K] (one output
 * per row, ideal for GEMV dot products): int8/int4 keep onnxruntime's MatMulNBits layout (int8 codes made
 * signed, see `toKernelCodes`); fp32/fp16 files hold the transposed [K, N] matrix, which is transposed back
 * (fp16 widened to fp32).
 */
import { ModelFormatError } from "../errors.ts";
import { fromHalf } from "../model/half.ts";
import type { Manifest, ManifestStage, TensorEntry } from "../model/manifest.ts";
import { bitsOf, blobBytes, blocksPerRow, dequantRow } from "../model/weights.ts";
import type { KernelHeap } from "./heap.ts";

/** A weight matrix W[n, k] in kernel memory (addresses are byte offsets). */
export type KernelMatrix =
  | { readonly kind: "f32"; readonly n: number; readonly k: number; readonly w: number }
  | { readonly kind: "q4" | "q8"; readonly n: number; readonly k: number; readonly blockSize: number; readonly codes: number; readonly scales: number };

/** One decoder layer; norm weights are f32[H] holding Gemma's (1 + w). */
export interface KernelLayer {
  readonly inputNorm: number;
  readonly postAttnNorm: number;
  readonly preFfNorm: number | null; // Gemma 2 only
  readonly postFfNorm: number | null; // Gemma 2 only
  readonly q: KernelMatrix; // [heads·hd, H]
  readonly k: KernelMatrix; // [kvHeads·hd, H]
  readonly v: KernelMatrix; // [kvHeads·hd, H]
  readonly o: KernelMatrix; // [H, heads·hd]
  readonly gate: KernelMatrix; // [I, H]
  readonly up: KernelMatrix; // [I, H]
  readonly down: KernelMatrix; // [H, I]
}

/** One vocabulary slice of the tied LM head: rows [from, to). */
export interface KernelHeadSlice {
  readonly from: number;
  readonly to: number;
  readonly norm: number; // final RMSNorm (1 + w), f32[H]
  readonly table: KernelMatrix; // [to - from, H]
}

/** Reads a stage's weight file from the model store (fetched and checked by the runtime). */
export type WeightFileReader = (name: string) => Promise<Uint8Array>;

/** Copies tensors of one weight file into the heap. */
class StageReader {
  private readonly entries: Map<string, TensorEntry>;

  constructor(
    private readonly manifest: Manifest,
    private readonly stage: ManifestStage,
    private readonly bytes: Uint8Array,
    private readonly heap: KernelHeap,
  ) {
    this.entries = new Map((manifest.tensors[stage.weights] ?? []).map((e) => [e.name, e]));
  }

  /** A norm weight f32[n] (already 1 + w). */
  vector(name: string, n: number): number {
    const e = this.entry(name, "FLOAT", [n]);
    const at = this.heap.alloc(4 * n);
    this.heap.u8(at, e.length).set(this.raw(e));
    return at;
  }

  /** The linear layer `name` (`dec.l3.attn.q`, `head.embed`) as W[n, k]. */
  matrix(name: string, n: number, k: number): KernelMatrix {
    const { dtype, blockSize } = this.manifest.weights;
    if (dtype === "int8" || dtype === "int4") {
      const bits = dtype === "int8" ? 8 : 4;
      const layout = { n, k, bits, blockSize } as const;
      const blocks = blocksPerRow(layout);
      const codes = this.entry(`${name}.qweight`, "UINT8", [n, blocks, blobBytes(layout)]);
      const scales = this.entry(`${name}.scales`, "FLOAT", [n * blocks]);
      const c = this.heap.alloc(codes.length);
      const dst = this.heap.u8(c, codes.length);
      dst.set(this.raw(codes));
      toKernelCodes(bits, dst);
      const s = this.heap.alloc(scales.length);
      this.heap.u8(s, scales.length).set(this.raw(scales));
      return { kind: bits === 8 ? "q8" : "q4", n, k, blockSize, codes: c, scales: s };
    }
    const e = this.entry(`${name}.weight`, dtype === "fp32" ? "FLOAT" : "FLOAT16", [k, n]);
    const raw = this.raw(e);
    const src = dtype === "fp32" ? new Float32Array(raw.buffer, raw.byteOffset, k * n) : new Uint16Array(raw.buffer, raw.byteOffset, k * n);
    const at = this.heap.alloc(4 * n * k);
    const dst = this.heap.f32(at, n * k);
    const half = dtype === "fp16";
    for (let r = 0; r < k; r++) {
      for (let c = 0; c < n; c++) dst[c * k + r] = half ? fromHalf(src[r * n + c]) : src[r * n + c];
    }
    return { kind: "f32", n, k, w: at };
  }

  /** A float32 tensor copied as it is (position embeddings, conv kernels: never quantised). */
  floats(name: string, dims: number[]): number {
    const e = this.entry(name, "FLOAT", dims);
    const at = this.heap.alloc(e.length);
    this.heap.u8(at, e.length).set(this.raw(e));
    return at;
  }

  /**
   * The linear layers `names` (each [k → n], with bias) side by side as one B[k, n · names.length] in packB's
   * panel layout (what gemm multiplies by; q | k | v in one product): any dtype, widened or dequantised to
   * float32 (onnxruntime's MatMulNBits accuracy_level 0 arithmetic).
   */
  packed(names: readonly string[], n: number, k: number): PackedMatrix {
    return packMatrix(this.heap, names.map((name) => this.columns(name, n, k)), k);
  }

  /** B[k, n] = Wᵀ for a float32 W[n, k] stored one output per row (the patch-embedding conv), with bias. */
  packedRows(name: string, dims: number[], n: number, k: number, bias: string): PackedMatrix {
    const raw = this.raw(this.entry(name, "FLOAT", dims));
    return packMatrix(this.heap, [{ src: new Float32Array(raw.buffer, raw.byteOffset, n * k), rs: 1, cs: k, n, bias: this.biasOf(bias, n) }], k);
  }

  /** The linear layer `name` as float32 B[k, n] (read in place for fp32) and its bias. */
  private columns(name: string, n: number, k: number): ColumnSource {
    const { dtype, blockSize } = this.manifest.weights;
    let dense: Float32Array; // B[k, n] at dense[r·rs + c·cs]
    let rs = n;
    let cs = 1;
    if (dtype === "int8" || dtype === "int4") {
      const layout = { n, k, bits: bitsOf(dtype), blockSize } as const;
      const codes = this.raw(this.entry(`${name}.qweight`, "UINT8", [n, blocksPerRow(layout), blobBytes(layout)]));
      const s = this.raw(this.entry(`${name}.scales`, "FLOAT", [n * blocksPerRow(layout)]));
      const scales = new Float32Array(s.buffer, s.byteOffset, s.byteLength / 4);
      dense = new Float32Array(n * k); // one output per row: B[r][c] = dense[c·k + r]
      for (let c = 0; c < n; c++) dequantRow(layout, codes, scales, c, dense.subarray(c * k, (c + 1) * k));
      rs = 1;
      cs = k;
    } else if (dtype === "fp16") {
      const raw = this.raw(this.entry(`${name}.weight`, "FLOAT16", [k, n]));
      const half = new Uint16Array(raw.buffer, raw.byteOffset, k * n);
      dense = new Float32Array(k * n);
      for (let i = 0; i < dense.length; i++) dense[i] = fromHalf(half[i]);
    } else {
      const raw = this.raw(this.entry(`${name}.weight`, "FLOAT", [k, n]));
      dense = new Float32Array(raw.buffer, raw.byteOffset, k * n);
    }
    return { src: dense, rs, cs, n, bias: this.biasOf(`${name}.bias`, n) };
  }

  /** A LayerNorm's weight and bias, f32[n] each. */
  layerNorm(name: string, n: number): LayerNormWeights {
    return { w: this.floats(`${name}.weight`, [n]), b: this.floats(`${name}.bias`, [n]) };
  }

  private biasOf(name: string, n: number): Float32Array {
    const raw = this.raw(this.entry(name, "FLOAT", [n]));
    return new Float32Array(raw.buffer, raw.byteOffset, n);
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  private entry(name: string, dtype: TensorEntry["dtype"], dims: number[]): TensorEntry {
    const e = this.entries.get(name);
    const where = `${this.stage.weights} (${this.stage.name})`;
    if (!e) throw new ModelFormatError(`${where}: no tensor ${name} in the manifest`);
    if (e.dtype !== dtype || e.dims.join() !== dims.join()) {
      throw new ModelFormatError(`${where}: ${name} is ${e.dtype}[${e.dims}], the kernel expects ${dtype}[${dims}]`);
    }
    if (e.offset + e.length > this.bytes.byteLength) throw new ModelFormatError(`${where}: ${name} lies past the end of the file`);
    return e;
  }

  private raw(e: TensorEntry): Uint8Array {
    return this.bytes.subarray(e.offset, e.offset + e.length);
  }
}

/** Loads the layers of one decoder stage (names as converter/graphs/decoder.ts writes them). */
export function loadDecoderStage(manifest: Manifest, stage: ManifestStage, bytes: Uint8Array, heap: KernelHeap): KernelLayer[] {
  const t = manifest.config.text;
  const r = new StageReader(manifest, stage, bytes, heap);
  const q = t.heads * t.headDim;
  const kv = t.kvHeads * t.headDim;
  const layers: KernelLayer[] = [];
  for (let i = stage.from; i < stage.to; i++) {
    const p = `dec.l${i}`;
    const gemma2 = t.family === "gemma2";
    layers.push({
      inputNorm: r.vector(`${p}.input_norm.weight`, t.hidden),
      postAttnNorm: r.vector(`${p}.post_attn_norm.weight`, t.hidden),
      preFfNorm: gemma2 ? r.vector(`${p}.pre_ff_norm.weight`, t.hidden) : null,
      postFfNorm: gemma2 ? r.vector(`${p}.post_ff_norm.weight`, t.hidden) : null,
      q: r.matrix(`${p}.attn.q`, q, t.hidden),
      k: r.matrix(`${p}.attn.k`, kv, t.hidden),
      v: r.matrix(`${p}.attn.v`, kv, t.hidden),
      o: r.matrix(`${p}.attn.o`, t.hidden, q),
      gate: r.matrix(`${p}.gate`, t.intermediate, t.hidden),
      up: r.matrix(`${p}.up`, t.intermediate, t.hidden),
      down: r.matrix(`${p}.down`, t.hidden, t.intermediate),
    });
  }
  return layers;
}

/** Loads one head stage: the final norm and the embedding rows [from, to) (names as converter/graphs/head.ts). */
export function loadHeadStage(manifest: Manifest, stage: ManifestStage, bytes: Uint8Array, heap: KernelHeap): KernelHeadSlice {
  const r = new StageReader(manifest, stage, bytes, heap);
  const h = manifest.config.text.hidden;
  return { from: stage.from, to: stage.to, norm: r.vector("head.norm.weight", h), table: r.matrix("head.embed", stage.to - stage.from, h) };
}

/** A LayerNorm's parameters in kernel memory (f32[n] each). */
export interface LayerNormWeights {
  readonly w: number;
  readonly b: number;
}

/** B[k, n] in packB's layout (panels of 8 columns, zero-padded) and its bias f32[⌈n/8⌉·8] (0: none). */
export interface PackedMatrix {
  readonly k: number;
  readonly n: number;
  readonly b: number;
  readonly bias: number;
}

/** One SigLIP encoder layer. */
export interface VisionLayerWeights {
  readonly ln1: LayerNormWeights;
  readonly ln2: LayerNormWeights;
  readonly qkv: PackedMatrix; // [D, 3D]: q | k | v
  readonly o: PackedMatrix; // [D, D]
  readonly fc1: PackedMatrix; // [D, I]
  readonly fc2: PackedMatrix; // [I, D]
}

/** The whole vision tower: patch embedding (first stage), layers, post-norm and projector (last stage). */
export interface VisionWeights {
  readonly patch: PackedMatrix; // [3·p², D]
  readonly pos: number; // f32[N, D]
  readonly layers: readonly VisionLayerWeights[];
  readonly post: LayerNormWeights;
  readonly proj: PackedMatrix; // [D, P]
}

/** Bytes of kernel memory a packed matrix holds (panels + bias). */
export function packedBytes(m: PackedMatrix): number {
  const cols = Math.ceil(m.n / 8) * 8;
  return 4 * cols * (m.k + (m.bias ? 1 : 0));
}

/** n columns of a float32 B[k, n] at src[r·rs + c·cs], and their bias (null: none). */
export interface ColumnSource {
  readonly src: Float32Array;
  readonly rs: number;
  readonly cs: number;
  readonly n: number;
  readonly bias: Float32Array | null;
}

/**
 * Packs the columns of `parts`, side by side, into a fresh packB-layout block with their biases (zero-padded);
 * either every part has a bias or none has.
 */
export function packMatrix(heap: KernelHeap, parts: readonly ColumnSource[], k: number): PackedMatrix {
  const withBias = parts.filter((p) => p.bias).length;
  if (withBias !== 0 && withBias !== parts.length) throw new Error("packMatrix: some parts have a bias and some do not");
  const n = parts.reduce((a, p) => a + p.n, 0);
  const cols = Math.ceil(n / 8) * 8;
  const b = heap.alloc(4 * k * cols);
  const dst = heap.f32(b, k * cols).fill(0);
  let c = 0; // first column of the current part in B
  for (const part of parts) {
    for (let j = 0; j < part.n; j++, c++) {
      let o = (c >> 3) * 8 * k + (c & 7); // B[0][c] in its panel
      for (let r = 0; r < k; r++, o += 8) dst[o] = part.src[r * part.rs + j * part.cs];
    }
  }
  let at = 0;
  if (withBias) {
    at = heap.alloc(4 * cols);
    const v = heap.f32(at, cols).fill(0);
    let off = 0;
    for (const part of parts) v.set(part.bias!, (off += part.n) - part.n);
  }
  return { k, n, b, bias: at };
}

/**
 * Loads every vision stage of a model (in order) into one heap: the names converter/graphs/vision.ts writes.
 * `files` gives each stage's weight file.
 */
export function loadVisionStages(manifest: Manifest, stages: readonly ManifestStage[], files: readonly Uint8Array[], heap: KernelHeap): VisionWeights {
  const c = manifest.config;
  const v = c.vision;
  const d = v.hidden;
  const pp = 3 * v.patchSize ** 2;
  let patch: PackedMatrix | null = null;
  let pos = 0;
  let post: LayerNormWeights | null = null;
  let proj: PackedMatrix | null = null;
  const layers: VisionLayerWeights[] = [];
  stages.forEach((stage, s) => {
    const r = new StageReader(manifest, stage, files[s], heap);
    if (stage.from === 0) {
      patch = r.packedRows("vis.patch.weight", [d, 3, v.patchSize, v.patchSize], d, pp, "vis.patch.bias");
      pos = r.floats("vis.pos", [c.imageTokens, d]);
    }
    for (let i = stage.from; i < stage.to; i++) {
      const p = `vis.l${i}`;
      layers.push({
        ln1: r.layerNorm(`${p}.ln1`, d),
        ln2: r.layerNorm(`${p}.ln2`, d),
        qkv: r.packed([`${p}.q`, `${p}.k`, `${p}.v`], d, d),
        o: r.packed([`${p}.o`], d, d),
        fc1: r.packed([`${p}.fc1`], v.intermediate, d),
        fc2: r.packed([`${p}.fc2`], d, v.intermediate),
      });
    }
    if (stage.to === v.layers) {
      post = r.layerNorm("vis.post_ln", d);
      proj = r.packed(["proj"], c.projectionDim, d);
    }
  });
  if (!patch || !post || !proj || layers.length !== v.layers) {
    throw new ModelFormatError(`the vision stages cover ${layers.length} of ${v.layers} layers; the kernel needs all of them`);
  }
  return { patch, pos, layers, post, proj };
}

/**
 * Turns MatMulNBits codes into the kernel's, in place: int4 unchanged (unsigned nibbles, zero point 8); int8
 * stored signed (code − 128, i.e. the top bit flipped), the operand the 8-bit dot products take as it is.
 */
export function toKernelCodes(bits: 4 | 8, codes: Uint8Array): void {
  if (bits === 4) return;
  for (let i = 0; i < codes.length; i++) codes[i] ^= 0x80;
}

/** Bytes a matrix occupies in kernel memory. */
export function matrixBytes(m: KernelMatrix): number {
  if (m.kind === "f32") return 4 * m.n * m.k;
  const blocks = Math.ceil(m.k / m.blockSize);
  return m.n * blocks * ((m.blockSize * (m.kind === "q4" ? 4 : 8)) / 8) + 4 * m.n * blocks;
}
