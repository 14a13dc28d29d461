/** Named scratch buffers in kernel memory that grow on demand (contents are not kept across growth). */
import type { KernelHeap } from "./heap.ts";

export class Buffers {
  private readonly held = new Map<string, { at: number; bytes: number }>();

  constructor(private readonly heap: KernelHeap) {}

  /** The address of buffer `name`, holding at least `bytes`. */
  get(name: string, bytes: number): number {
    const b = this.held.get(name);
    if (b && b.bytes >= bytes) return b.at;
    if (b) this.heap.release(b.at);
    const at = this.heap.alloc(bytes);
    this.held.set(name, { at, bytes });
    return at;
  }

  /** Bytes held now. */
  get bytes(): number {
    let sum = 0;
    for (const b of this.held.values()) sum += b.bytes;
    return sum;
  }

  /** Gives every buffer back. */
  releaseAll(): void {
    for (const b of this.held.values()) this.heap.release(b.at);
    this.held.clear();
  }
}
