/**
 * Streams one weight file into kernel memory. The caller first declares what it needs from the file (a matrix,
 * a vector, a float tensor): each declaration allocates its final place in kernel memory at once, in the
 * kernel's format, and registers how the file's bytes for that tensor are written there. `fill` then reads the
 * file chunk by chunk, writing each chunk's bytes straight to their places (int8 codes made signed, fp32/fp16
 * matrices transposed [k, n] → [n, k], fp16 widened) while the file's size and sha256 are checked as the bytes
 * pass. No copy of the file is ever held in JavaScript: the bytes pass through one reused 1 MiB block, so loading
 * peaks at the stage's resident size plus that block.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { ModelFormatError } from "../errors.ts";
import { fromHalf } from "../model/half.ts";
import type { Manifest, TensorEntry } from "../model/manifest.ts";
import { bitsOf, blobBytes, blocksPerRow } from "../model/weights.ts";
import type { KernelHeap } from "./heap.ts";
import type { KernelMatrix } from "./matrix.ts";

/** A weight file's bytes: whole, or as a stream of chunks (an R2 object, a static asset, a local file). */
export type ByteSource = Uint8Array | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

/** How a tensor's file bytes reach kernel memory. */
type Write =
  | { readonly op: "copy" | "signed"; readonly dst: number }
  | { readonly op: "transpose"; readonly dst: number; readonly n: number; readonly k: number; readonly half: boolean };

interface Placement {
  readonly entry: TensorEntry;
  readonly write: Write;
}

/** What a StageFile reads of a manifest: a model's, or an adapter's (shared/model/adapter-manifest.ts). */
export type FileIndex = Pick<Manifest, "id" | "weights" | "files"> & { readonly tensors: Readonly<Record<string, readonly TensorEntry[]>> };

/** One weight file of a model, placed into one kernel heap. */
export class StageFile {
  private readonly entries: Map<string, TensorEntry>;
  private readonly placements: Placement[] = [];

  constructor(
    private readonly manifest: FileIndex,
    readonly name: string,
    private readonly heap: KernelHeap,
  ) {
    this.entries = new Map((manifest.tensors[name] ?? []).map((e) => [e.name, e]));
  }

  /** Whether the file has tensor `name`. */
  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** A float32 tensor kept as it is (norm weights already 1 + w, biases, position embeddings, conv kernels). */
  floats(name: string, dims: readonly number[], padTo = 1): number {
    const e = this.entry(name, "FLOAT", dims);
    const padded = Math.ceil(e.length / 4 / padTo) * padTo * 4;
    const at = this.heap.alloc(padded);
    if (padded > e.length) this.heap.u8(at + e.length, padded - e.length).fill(0);
    this.placements.push({ entry: e, write: { op: "copy", dst: at } });
    return at;
  }

  /** The linear layer `name` (`dec.l3.attn.q`, `vis.l0.fc1`, `head.embed`) as W[n, k] in the model's dtype. */
  matrix(name: string, n: number, k: number): KernelMatrix {
    const { dtype, blockSize } = this.manifest.weights;
    if (dtype === "int8" || dtype === "int4") {
      const layout = { n, k, bits: bitsOf(dtype), blockSize } as const;
      const blocks = blocksPerRow(layout);
      const codes = this.entry(`${name}.qweight`, "UINT8", [n, blocks, blobBytes(layout)]);
      const scales = this.entry(`${name}.scales`, "FLOAT", [n * blocks]);
      const c = this.heap.alloc(codes.length);
      const s = this.heap.alloc(scales.length);
      this.placements.push({ entry: codes, write: { op: dtype === "int8" ? "signed" : "copy", dst: c } });
      this.placements.push({ entry: scales, write: { op: "copy", dst: s } });
      return { kind: dtype === "int8" ? "q8" : "q4", n, k, blockSize, codes: c, scales: s };
    }
    const e = this.entry(`${name}.weight`, dtype === "fp32" ? "FLOAT" : "FLOAT16", [k, n]);
    const at = this.heap.alloc(4 * n * k);
    this.placements.push({ entry: e, write: { op: "transpose", dst: at, n, k, half: dtype === "fp16" } });
    return { kind: "f32", n, k, w: at };
  }

  /** A float32 W[n, k] stored one output per row already (the patch-embedding conv kernel [D, 3, p, p]). */
  rowsMatrix(name: string, dims: readonly number[], n: number, k: number): KernelMatrix {
    return { kind: "f32", n, k, w: this.floats(name, dims) };
  }

  /**
   * Reads the whole file from `source` into the declared places, checking its size and sha256 against the
   * manifest. Tensors nobody declared are skipped.
   *
   * @throws ModelFormatError for a file of the wrong size or digest (the kernel memory is then garbage).
   */
  async fill(source: ByteSource, verify = true): Promise<void> {
    const expected = this.manifest.files[this.name];
    if (!expected) throw new ModelFormatError(`${this.name} is not listed in the manifest of ${this.manifest.id}`);
    const order = [...this.placements].sort((a, b) => a.entry.offset - b.entry.offset);
    const hash = verify ? sha256.create() : null;
    let offset = 0;
    let next = 0; // first placement that may still receive bytes
    for await (const block of blocksOf(source)) {
      hash?.update(block);
      while (next < order.length && order[next].entry.offset + order[next].entry.length <= offset) next++;
      const end = offset + block.length;
      for (let i = next; i < order.length && order[i].entry.offset < end; i++) {
        const { entry, write } = order[i];
        const from = Math.max(offset, entry.offset);
        const to = Math.min(end, entry.offset + entry.length);
        if (from < to) this.apply(write, block.subarray(from - offset, to - offset), from - entry.offset);
      }
      offset = end;
    }
    if (offset !== expected.bytes) throw new ModelFormatError(`model ${this.manifest.id}: ${this.name} has ${offset} bytes, the manifest says ${expected.bytes}`);
    if (hash && toHex(hash.digest()) !== expected.sha256) throw new ModelFormatError(`model ${this.manifest.id}: ${this.name} fails its sha256 check`);
  }

  /** Writes `bytes`, which start `at` bytes into the tensor, to its place. */
  private apply(write: Write, bytes: Uint8Array, at: number): void {
    if (write.op === "copy" || write.op === "signed") {
      const dst = this.heap.u8(write.dst + at, bytes.length);
      dst.set(bytes);
      if (write.op === "signed") for (let i = 0; i < dst.length; i++) dst[i] ^= 0x80;
      return;
    }
    if (write.op !== "transpose") return;
    const { n, k, half } = write;
    const size = half ? 2 : 4;
    const src = half ? new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2) : new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    const dst = this.heap.f32(write.dst, n * k);
    let e = at / size; // element index in the file's [k, n] order
    for (let i = 0; i < src.length; i++, e++) {
      const r = Math.floor(e / n);
      const c = e - r * n;
      dst[c * k + r] = half ? fromHalf(src[i]) : src[i];
    }
  }

  private entry(name: string, dtype: TensorEntry["dtype"], dims: readonly number[]): TensorEntry {
    const e = this.entries.get(name);
    if (!e) throw new ModelFormatError(`${this.name}: no tensor ${name} in the manifest`);
    if (e.dtype !== dtype || e.dims.join() !== dims.join()) throw new ModelFormatError(`${this.name}: ${name} is ${e.dtype}[${e.dims}], the kernel expects ${dtype}[${dims}]`);
    const size = this.manifest.files[this.name]?.bytes ?? 0;
    if (e.offset + e.length > size) throw new ModelFormatError(`${this.name}: ${name} lies past the end of the file`);
    if (e.offset % 4 !== 0) throw new ModelFormatError(`${this.name}: ${name} is not 4-byte aligned`);
    return e;
  }
}

/** Bytes per block: the one staging buffer a file passes through. */
const BLOCK = 1 << 20;

/**
 * The source's bytes in order, as views of one reused, 4-byte aligned staging buffer, every block but the last
 * a whole BLOCK (so tensors, which are 4-byte aligned in the file, never straddle an odd boundary). A byte stream
 * is read straight into the buffer (BYOB); other sources are copied into it. Each view is valid until the next
 * one is asked for: loading leaves no garbage chunk behind for the collector, so RSS stays at the stage's size.
 */
async function* blocksOf(source: ByteSource): AsyncIterable<Uint8Array> {
  if (source instanceof ReadableStream) {
    const byob = byobReader(source);
    if (byob) return yield* readInto(byob);
    const reader = source.getReader();
    try {
      yield* packed({ [Symbol.asyncIterator]: () => ({ next: () => reader.read() as Promise<IteratorResult<Uint8Array>> }) });
    } finally {
      reader.releaseLock();
    }
    return;
  }
  yield* packed(source instanceof Uint8Array ? [source] : source);
}

function byobReader(stream: ReadableStream<Uint8Array>): ReadableStreamBYOBReader | null {
  try {
    return stream.getReader({ mode: "byob" });
  } catch {
    return null; // not a byte stream
  }
}

async function* readInto(reader: ReadableStreamBYOBReader): AsyncIterable<Uint8Array> {
  let buffer = new ArrayBuffer(BLOCK);
  try {
    for (let done = false; !done; ) {
      let filled = 0;
      while (filled < BLOCK && !done) {
        const r = await reader.read(new Uint8Array(buffer, filled, BLOCK - filled));
        if (r.value) ((buffer = r.value.buffer as ArrayBuffer), (filled += r.value.byteLength));
        done = r.done;
      }
      if (filled > 0) yield new Uint8Array(buffer, 0, filled);
    }
  } finally {
    reader.releaseLock();
  }
}

async function* packed(chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  const buffer = new Uint8Array(BLOCK);
  let filled = 0;
  for await (const chunk of chunks) {
    for (let at = 0; at < chunk.length; ) {
      const n = Math.min(BLOCK - filled, chunk.length - at);
      buffer.set(chunk.subarray(at, at + n), filled);
      ((filled += n), (at += n));
      if (filled === BLOCK) ((filled = 0), yield buffer);
    }
  }
  if (filled > 0) yield buffer.subarray(0, filled);
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
