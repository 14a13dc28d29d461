/**
 * Node-side set-up of the kernel module (CLI, tests, benchmarks): reads both builds from kernels/wasm/ and
 * lets module.ts pick the relaxed-SIMD one when this V8 validates it (Node 20 does only with
 * --experimental-wasm-relaxed-simd). Workers code must not import this file: it reads the file system.
 */
import { readFile } from "node:fs/promises";
import { initKernel, type KernelFlavor, type KernelModule, type KernelSource } from "./module.ts";

const WASM = new URL("../../kernels/wasm/", import.meta.url);

/** Both builds' bytes, as a KernelSource (`prefer: "simd"` forces the plain-SIMD build). */
export async function kernelSourceForNode(prefer?: KernelFlavor): Promise<KernelSource> {
  const [bytes, relaxed] = await Promise.all([readFile(new URL("paligemma-kernel-simd.wasm", WASM)), readFile(new URL("paligemma-kernel-relaxed.wasm", WASM))]);
  return { kind: "bytes", bytes: new Uint8Array(bytes), relaxed: new Uint8Array(relaxed), prefer };
}

/** Sets up this process's kernel module (idempotent). */
export async function initKernelForNode(): Promise<KernelModule> {
  return initKernel(await kernelSourceForNode());
}
