/** Small file helpers for the CLI: raw little-endian float32 files and id lists. */
import { readFileSync, writeFileSync } from "node:fs";
import { GEMM_COMPUTES, type GemmCompute } from "../shared/kernel/gemm.ts";

export function readF32(path: string): Float32Array {
  const b = readFileSync(path);
  if (b.byteLength % 4 !== 0) throw new Error(`${path}: ${b.byteLength} bytes is not a whole number of float32 values`);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export function writeF32(path: string, data: Float32Array): void {
  writeFileSync(path, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

/** "1,2, 3" → [1, 2, 3]; rejects anything that is not a list of non-negative integers. */
export function parseIds(list: string): number[] {
  const ids = list.split(",").map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  if (ids.length === 0 || ids.some((n) => !Number.isSafeInteger(n) || n < 0)) {
    throw new Error(`--input-ids must be a comma-separated list of non-negative integers, got "${list}"`);
  }
  return ids;
}

/** An engine choice (`--decode`, `--vision`): "ort" or "kernel". */
/** Validates `--gemm`: how the kernel's prefill and vision GEMMs meet int8/int4 weights (shared/kernel/gemm.ts). */
export function gemmOption(value: string): GemmCompute {
  if (!(GEMM_COMPUTES as readonly string[]).includes(value)) throw new Error(`--gemm must be ${GEMM_COMPUTES.slice(0, -1).join(", ")} or ${GEMM_COMPUTES.at(-1)}, got ${value}`);
  return value as GemmCompute;
}

export function engineOption(flag: string, value: string): "ort" | "kernel" {
  if (value !== "ort" && value !== "kernel") throw new Error(`${flag} must be ort or kernel, got ${value}`);
  return value;
}
