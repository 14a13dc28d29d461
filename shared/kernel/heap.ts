/**
 * The allocator over a kernel instance's linear memory: first fit over a coalescing free list, growing the
 * memory when nothing fits. Every block is 64-byte aligned (cache lines; SIMD loads). Growing the memory
 * replaces its ArrayBuffer, so views are made on demand (`f32`, `u8`) and must not be kept across allocations.
 */

const ALIGN = 64;
const PAGE = 65536;

interface Block {
  readonly at: number;
  readonly bytes: number;
}

/** Byte-level allocator for one WebAssembly.Memory, starting at `base`. */
export class KernelHeap {
  private top: number; // first byte never handed out
  private free: Block[] = []; // sorted by address, coalesced
  private readonly sizes = new Map<number, number>(); // live blocks: address → bytes
  private live = 0;

  constructor(
    readonly memory: WebAssembly.Memory,
    base: number,
  ) {
    this.top = roundUp(base);
  }

  /** Allocates `bytes` (rounded up to 64) and returns the address; the contents are unspecified. */
  alloc(bytes: number): number {
    const size = roundUp(Math.max(bytes, 1));
    let at = -1;
    const i = this.free.findIndex((b) => b.bytes >= size);
    if (i >= 0) {
      const b = this.free[i];
      at = b.at;
      if (b.bytes === size) this.free.splice(i, 1);
      else this.free[i] = { at: b.at + size, bytes: b.bytes - size };
    } else {
      at = this.top;
      this.top += size;
      const need = this.top - this.memory.buffer.byteLength;
      if (need > 0) this.memory.grow(Math.ceil(need / PAGE));
    }
    this.sizes.set(at, size);
    this.live += size;
    return at;
  }

  /** Allocates and zero-fills. */
  calloc(bytes: number): number {
    const at = this.alloc(bytes);
    this.u8(at, roundUp(Math.max(bytes, 1))).fill(0);
    return at;
  }

  /** Returns a block to the free list (merging with its neighbours). */
  release(at: number): void {
    const size = this.sizes.get(at);
    if (size === undefined) throw new Error(`kernel heap: ${at} is not an allocated block`);
    this.sizes.delete(at);
    this.live -= size;
    let i = this.free.findIndex((b) => b.at > at);
    if (i < 0) i = this.free.length;
    this.free.splice(i, 0, { at, bytes: size });
    if (i + 1 < this.free.length && at + size === this.free[i + 1].at) {
      this.free[i] = { at, bytes: size + this.free[i + 1].bytes };
      this.free.splice(i + 1, 1);
    }
    if (i > 0 && this.free[i - 1].at + this.free[i - 1].bytes === at) {
      this.free[i - 1] = { at: this.free[i - 1].at, bytes: this.free[i - 1].bytes + this.free[i].bytes };
      this.free.splice(i, 1);
    }
    const last = this.free[this.free.length - 1];
    if (last && last.at + last.bytes === this.top) {
      this.top = last.at; // give the tail back to the bump region
      this.free.pop();
    }
  }

  /** A float32 view of `n` values at `at` (valid until the next allocation). */
  f32(at: number, n: number): Float32Array {
    return new Float32Array(this.memory.buffer, at, n);
  }

  /** A byte view of `n` bytes at `at` (valid until the next allocation). */
  u8(at: number, n: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, at, n);
  }

  /** Bytes in live blocks, and the memory's size (WebAssembly memory never shrinks). */
  stats(): { liveBytes: number; memoryBytes: number } {
    return { liveBytes: this.live, memoryBytes: this.memory.buffer.byteLength };
  }
}

function roundUp(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}
