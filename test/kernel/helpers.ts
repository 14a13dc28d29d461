/**
 * Test helpers for the kernel module: instances of a chosen build, deterministic data, float64 references
 * of the quantised products, and a scale-free error (NMSE) for comparing a kernel output with them.
 */
import { kernelSourceForNode } from "../../shared/kernel/node.ts";
import { compileKernel, instantiateKernel, type Kernel, type KernelFlavor } from "../../shared/kernel/module.ts";

/** A fresh instance of the `flavor` build (null when this engine cannot run it: relaxed SIMD on Node 20). */
export async function kernelOf(flavor: KernelFlavor): Promise<Kernel | null> {
  const source = await kernelSourceForNode(flavor === "simd" ? "simd" : undefined);
  const km = await compileKernel(source);
  if (km.flavor !== flavor) return null;
  return instantiateKernel(km);
}

/** mulberry32-based uniform floats in [-1, 1) (deterministic per seed). */
export function uniform(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

/** Random MatMulNBits codes u8[n, blocks, bs·bits/8] and positive scales f32[n·blocks]. */
export function randomNBits(n: number, k: number, bits: 4 | 8, bs: number, seed: number): { codes: Uint8Array; scales: Float32Array } {
  const blocks = Math.ceil(k / bs);
  const codes = Uint8Array.from(uniform((n * blocks * bs * bits) / 8, seed), (v) => Math.floor((v + 1) * 128) & 255);
  const scales = uniform(n * blocks, seed + 1).map((v) => 0.01 + 0.005 * v);
  return { codes, scales };
}

/** Code of row r, column c of an nbits matrix. */
export function codeAt(codes: Uint8Array, k: number, bits: 4 | 8, bs: number, r: number, c: number): number {
  const blocks = Math.ceil(k / bs);
  const base = ((r * blocks + Math.floor(c / bs)) * bs * bits) / 8;
  const j = c % bs;
  return bits === 8 ? codes[base + j] : (codes[base + (j >> 1)] >> ((j & 1) * 4)) & 15;
}

/** y = dequant(W)·x in float64 (accuracy_level 0 semantics). */
export function refGemv(codes: Uint8Array, scales: Float32Array, x: Float32Array, n: number, k: number, bits: 4 | 8, bs: number): Float64Array {
  const blocks = Math.ceil(k / bs);
  const zero = 1 << (bits - 1);
  const y = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let c = 0; c < k; c++) s += (codeAt(codes, k, bits, bs, r, c) - zero) * scales[r * blocks + Math.floor(c / bs)] * x[c];
    y[r] = s;
  }
  return y;
}

/** x quantised the way the kernel does (per block: scale = absmax/127 in f32, q = round-half-even(x/scale)). */
export function quantizeRef(x: Float32Array, k: number, bs: number): { q: Int32Array; sx: Float32Array } {
  const blocks = Math.ceil(k / bs);
  const q = new Int32Array(blocks * bs);
  const sx = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    let absmax = 0;
    for (let i = b * bs; i < Math.min(k, (b + 1) * bs); i++) absmax = Math.max(absmax, Math.abs(x[i]));
    sx[b] = Math.fround(absmax / 127);
    const inv = sx[b] > 0 ? Math.fround(1 / sx[b]) : 0;
    for (let i = b * bs; i < Math.min(k, (b + 1) * bs); i++) q[i] = roundEven(Math.fround(x[i] * inv));
  }
  return { q, sx };
}

function roundEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** y from the int8-activation semantics (accuracy_level 4) in float64: exact integer dots, then scales. */
export function refGemvInt8(codes: Uint8Array, scales: Float32Array, x: Float32Array, n: number, k: number, bits: 4 | 8, bs: number): Float64Array {
  const blocks = Math.ceil(k / bs);
  const zero = 1 << (bits - 1);
  const { q, sx } = quantizeRef(x, k, bs);
  const y = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let b = 0; b < blocks; b++) {
      let d = 0;
      for (let c = b * bs; c < Math.min(k, (b + 1) * bs); c++) d += (codeAt(codes, k, bits, bs, r, c) - zero) * q[c];
      s += scales[r * blocks + b] * sx[b] * d;
    }
    y[r] = s;
  }
  return y;
}

/** Normalised mean squared error Σ(a−b)² / Σb², with the worst index for messages. */
export function nmse(a: ArrayLike<number>, b: ArrayLike<number>): { nmse: number; worst: number } {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
    if (Math.abs(d) > Math.abs(a[worst] - b[worst])) worst = i;
  }
  return { nmse: den > 0 ? num / den : num, worst };
}

/** Copies `data` into a fresh allocation and returns its address. */
export function put(kernel: Kernel, data: Float32Array | Uint8Array): number {
  const at = kernel.heap.alloc(data.byteLength);
  kernel.heap.u8(at, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return at;
}

/** Shapes that reach every GEMV code path: odd rows, block tails, block sizes 32/64/128, K padding, int8 K tiles. */
export const GEMV_SHAPES = [
  { n: 7, k: 96, bs: 32 }, // 3 blocks: tail only
  { n: 33, k: 192, bs: 32 }, // 6 blocks: one group of 4 + tail, odd rows
  { n: 16, k: 512, bs: 64 },
  { n: 5, k: 1024, bs: 128 },
  { n: 4, k: 100, bs: 32 }, // K padded to 128
  { n: 3, k: 16384 + 96, bs: 32 }, // int8: more than one K tile
] as const;
