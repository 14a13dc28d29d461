/** The allocator over kernel memory: alignment, growth, reuse and coalescing of freed blocks. */
import { expect, it } from "vitest";
import { KernelHeap } from "../../shared/kernel/heap.ts";

const PAGE = 65536;

it("hands out 64-byte aligned, disjoint blocks and grows the memory on demand", () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const heap = new KernelHeap(memory, 1000);
  const a = heap.alloc(10);
  const b = heap.alloc(3 * PAGE);
  expect(a).toBe(1024);
  expect(b).toBe(1088);
  expect(memory.buffer.byteLength).toBeGreaterThanOrEqual(b + 3 * PAGE);
  heap.f32(b, 3 * 16384).fill(1.5); // views made after the growth see the new buffer
  expect(heap.stats().liveBytes).toBe(64 + 3 * PAGE);
});

it("reuses freed blocks first fit, merges neighbours and gives the tail back", () => {
  const heap = new KernelHeap(new WebAssembly.Memory({ initial: 1 }), 0);
  const [a, b, c] = [heap.alloc(64), heap.alloc(128), heap.alloc(64)];
  heap.release(a);
  heap.release(b); // merges with a: 192 free bytes at 0
  expect(heap.alloc(150)).toBe(a);
  expect(heap.alloc(40)).toBe(c + 64); // 42 bytes left at 192 do not fit 64: bump
  heap.release(c + 64);
  heap.release(c);
  expect(heap.alloc(64)).toBe(c); // the tail went back to the bump region
  expect(() => heap.release(12345)).toThrow(/not an allocated block/);
  expect(heap.calloc(100)).toBe(c + 64);
});
