/**
 * Loads the decode kernel module (kernels/assembly/, built into kernels/wasm/) once per isolate.
 *
 * Two builds exist: with relaxed SIMD (fused multiply-add, 8-bit dot products) and with plain SIMD only. Which
 * one runs is decided here at start-up: given bytes (Node), the relaxed build is used when this engine
 * validates it; given compiled modules (workerd: wrangler's `CompiledWasm` rule compiled them when the worker
 * loaded, so a relaxed module that exists is supported), the relaxed one is used when it is passed. Either
 * way it must also pass its self-test (a known-answer 8-bit dot product) on this engine.
 *
 * Workers refuse to compile WebAssembly from bytes at run time, so workerd must pass modules. The kernel is
 * instantiated from a `WebAssembly.Module` there, which shared/engine/ort.ts's routing leaves alone.
 */
import { KernelHeap } from "./heap.ts";

/** How this isolate provides the kernel's WebAssembly: plain-SIMD build, plus optionally the relaxed one. */
export type KernelSource =
  | { readonly kind: "bytes"; readonly bytes: Uint8Array; readonly relaxed?: Uint8Array; readonly prefer?: KernelFlavor }
  | { readonly kind: "module"; readonly module: WebAssembly.Module; readonly relaxed?: WebAssembly.Module; readonly prefer?: KernelFlavor };

/** Which build runs: "relaxed" (relaxed SIMD) or "simd" (plain SIMD). */
export type KernelFlavor = "relaxed" | "simd";

/** The module's exports; pointers are byte offsets into `memory`, sizes are element counts. */
export interface KernelExports {
  readonly memory: WebAssembly.Memory;
  heapBase(): number;
  relaxedSimd(): number;
  selfTest(): number;
  gemvF32(y: number, w: number, x: number, n: number, k: number): void;
  gemvQ4(y: number, w: number, scales: number, xq: number, sx: number, corr: number, n: number, k: number, bs: number): void;
  gemvQ8(y: number, w: number, scales: number, xq: number, sx: number, corr: number, n: number, k: number, bs: number): void;
  gemvQ4F(y: number, w: number, scales: number, x: number, n: number, k: number, bs: number): void;
  gemvQ8F(y: number, w: number, scales: number, x: number, n: number, k: number, bs: number): void;
  /** Multi-vector GEMVs (gemv-batch*.ts): `tab` holds nv entries of four u32 (y, then the vector's operands). */
  gemvF32N(tab: number, w: number, n: number, k: number, nv: number): void;
  gemvQ4N(tab: number, w: number, scales: number, n: number, k: number, bs: number, nv: number): void;
  gemvQ8N(tab: number, w: number, scales: number, n: number, k: number, bs: number, nv: number): void;
  gemvQ4FN(tab: number, w: number, scales: number, n: number, k: number, bs: number, nv: number): void;
  gemvQ8FN(tab: number, w: number, scales: number, n: number, k: number, bs: number, nv: number): void;
  quantizeActivations(xq: number, sx: number, corr: number, x: number, k: number, bs: number, bits: number): void;
  permuteActivations(xp: number, x: number, k: number, bs: number, bits: number): void;
  rmsNorm(out: number, x: number, w: number, n: number, eps: number): void;
  rope(x: number, cos: number, sin: number, heads: number, hd: number): void;
  attention(out: number, q: number, keys: number, values: number, scores: number, heads: number, kvHeads: number, hd: number, cap: number, t: number, first: number, scale: number, softcap: number): void;
  geluMul(gate: number, up: number, n: number): void;
  addInto(x: number, y: number, n: number): void;
  softcapInPlace(x: number, n: number, cap: number): void;
  dot(a: number, b: number, n: number): number;
  packB(dst: number, src: number, rowStride: number, colStride: number, k: number, n: number): void;
  gemm(c: number, ldc: number, a: number, lda: number, bp: number, bias: number, m: number, n: number, k: number, flags: number, work: number): void;
  gemmW(c: number, ldc: number, a: number, lda: number, w: number, scales: number, kind: number, bs: number, bias: number, m: number, n: number, k: number, flags: number, work: number, panel: number, kRow: number): void;
  gemmQ7(c: number, ldc: number, a: number, lda: number, w: number, scales: number, kind: number, bs: number, bias: number, m: number, n: number, k: number, flags: number, work: number, panel: number, kRow: number): void;
  gemmQ4A8Pairs(c: number, ldc: number, a: number, lda: number, w: number, scales: number, kind: number, bs: number, bias: number, m: number, n: number, k: number, flags: number, work: number, panel: number, kRow: number): void;
  gemmQ4A8Wide(c: number, ldc: number, a: number, lda: number, w: number, scales: number, kind: number, bs: number, bias: number, m: number, n: number, k: number, flags: number, work: number, panel: number, kRow: number): void;
  wideDot(): number;
  fullDot(): number;
  gemmQ8A8(c: number, ldc: number, a: number, lda: number, w: number, scales: number, kind: number, bs: number, bias: number, m: number, n: number, k: number, flags: number, work: number, panel: number, kRow: number): void;
  gemmQ8A8Split(c: number, ldc: number, a: number, lda: number, w: number, scales: number, kind: number, bs: number, bias: number, m: number, n: number, k: number, flags: number, work: number, panel: number, kRow: number): void;
  gemmQ4A8(c: number, ldc: number, a: number, lda: number, w: number, scales: number, kind: number, bs: number, bias: number, m: number, n: number, k: number, flags: number, work: number, panel: number, kRow: number): void;
  gemmQ(c: number, ldc: number, a: number, lda: number, w: number, scales: number, kind: number, bs: number, bias: number, m: number, n: number, k: number, flags: number, work: number, panel: number, kRow: number): void;
  layerNorm(out: number, x: number, w: number, b: number, rows: number, n: number, eps: number): void;
  softmaxRows(x: number, ld: number, rows: number, n: number, scale: number): void;
  attnSoftmaxRows(x: number, ld: number, rows: number, pos0: number, t: number, prefixEnd: number, window: number, scale: number, softcap: number): void;
}

/** One instance of the kernel module with the allocator over its linear memory. */
export class Kernel {
  readonly heap: KernelHeap;

  constructor(
    readonly exports: KernelExports,
    readonly flavor: KernelFlavor,
    /** Size of the .wasm build in bytes (its compiled code is of the same order). */
    readonly codeBytes: number,
  ) {
    this.heap = new KernelHeap(exports.memory, exports.heapBase());
  }
}

/** A compiled build, ready to instantiate. */
export interface KernelModule {
  readonly module: WebAssembly.Module;
  readonly flavor: KernelFlavor;
  readonly codeBytes: number; // size of the .wasm (0 when handed a compiled module)
}

/**
 * Picks and compiles the build a source offers. A relaxed build is only taken when its self-test passes on
 * this engine (V8's early, flag-gated relaxed SIMD computes the 8-bit dot products differently).
 */
export async function compileKernel(source: KernelSource): Promise<KernelModule> {
  const plain: KernelModule =
    source.kind === "module" ? { module: source.module, flavor: "simd", codeBytes: 0 } : { module: await WebAssembly.compile(source.bytes as Uint8Array<ArrayBuffer>), flavor: "simd", codeBytes: source.bytes.byteLength };
  if (!source.relaxed || source.prefer === "simd") return plain;
  let relaxed: KernelModule;
  if (source.kind === "module") relaxed = { module: source.relaxed, flavor: "relaxed", codeBytes: 0 };
  else if (WebAssembly.validate(source.relaxed as Uint8Array<ArrayBuffer>)) relaxed = { module: await WebAssembly.compile(source.relaxed as Uint8Array<ArrayBuffer>), flavor: "relaxed", codeBytes: source.relaxed.byteLength };
  else return plain;
  const probe = (await WebAssembly.instantiate(relaxed.module, {})).exports as unknown as KernelExports;
  return probe.selfTest() === 1 ? relaxed : plain;
}

/** A fresh instance (its own linear memory, freed with it) of a compiled build. */
export async function instantiateKernel(m: KernelModule): Promise<Kernel> {
  const instance = await WebAssembly.instantiate(m.module, {});
  const ex = instance.exports as unknown as KernelExports;
  if (!(ex.memory instanceof WebAssembly.Memory) || typeof ex.gemvQ4 !== "function") throw new Error("not the paligemma-edge kernel module");
  if ((ex.relaxedSimd() === 1) !== (m.flavor === "relaxed")) throw new Error(`the ${m.flavor} kernel slot holds the other build`);
  return new Kernel(ex, m.flavor, m.codeBytes);
}

let configured: Promise<KernelModule> | null = null;

/**
 * Sets up this isolate's kernel module (idempotent: later calls keep the first). Node: pass the bytes of
 * kernels/wasm/paligemma-kernel-simd.wasm and -relaxed.wasm (shared/kernel/node.ts does). workerd: import both
 * .wasm files through a `CompiledWasm` rule and pass `{ kind: "module", module, relaxed }`. Every decoder then
 * gets its own instance (instantiateKernel), so its weights and caches go away with it.
 */
export function initKernel(source: KernelSource): Promise<KernelModule> {
  configured ??= compileKernel(source);
  configured.catch(() => (configured = null));
  return configured;
}

/** The module set up by initKernel; throws when it was never called. */
export function configuredKernel(): Promise<KernelModule> {
  if (!configured) throw new Error("initKernel() must be called before the kernel decode path is used");
  return configured;
}
