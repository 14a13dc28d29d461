/**
 * Deterministic synthetic weights with PaliGemma's real tensor names and sizes. Values are approximately
 * N(0, 0.02); norm scales centre on a gain of 1 so activations keep a normal range. Speed does not depend
 * on the values as long as they stay away from denormals and NaN, which these do.
 */
import type { ModelConfig } from "../shared/model/config.ts";
import { expectedTensorShapes, hfNames } from "../converter/checkpoint/names.ts";
import type { TensorSource } from "../converter/graphs/tensors.ts";

const STD = 0.02;

/** mulberry32: a small, fast 32-bit PRNG. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** FNV-1a of a string: a stable seed per tensor name. */
function seedOf(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

const POOL_SIZE = 1 << 20; // 4 MiB of unit normals, generated once
const CHUNK = 4096; // values copied from one random pool offset

let pool: Float32Array | null = null;

/** Unit normals (approximately): the sum of four uniform bytes, standardised. */
function unitPool(): Float32Array {
  if (pool) return pool;
  const next = mulberry32(0x5eed);
  const scale = 1 / Math.sqrt((4 * (256 * 256 - 1)) / 12); // mean 510, variance 4·(256²−1)/12
  pool = new Float32Array(POOL_SIZE);
  for (let i = 0; i < POOL_SIZE; i++) {
    const r = next();
    pool[i] = ((r & 0xff) + ((r >>> 8) & 0xff) + ((r >>> 16) & 0xff) + (r >>> 24) - 510) * scale;
  }
  return pool;
}

/**
 * `n` values ≈ N(mean, std²), the same for the same `key`: chunks of a shared pool of unit normals at
 * offsets drawn from a PRNG seeded by `key` (hundreds of millions of values per second).
 */
export function randomNormal(key: string, n: number, std = STD, mean = 0): Float32Array {
  const src = unitPool();
  const next = mulberry32(seedOf(key));
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += CHUNK) {
    const off = next() % (POOL_SIZE - CHUNK);
    const end = Math.min(n, i + CHUNK);
    for (let j = i; j < end; j++) out[j] = mean + src[off + j - i] * std;
  }
  return out;
}

/** Norm scales: LayerNorm weights (used as-is) and RMSNorm weights (used as 1 + w) both centre on a gain of 1. */
function isLayerNormWeight(name: string): boolean {
  return /layer_norm\d\.weight$/.test(name);
}

/**
 * A TensorSource with every tensor of `config` at its checkpoint shape. Tensors are generated on demand
 * (nothing is cached), so only the one being written is in memory.
 */
export function syntheticSource(c: ModelConfig): TensorSource {
  const shapes = expectedTensorShapes(c);
  return {
    get(name) {
      const shape = shapes.get(name);
      if (shape === undefined) throw new Error(`synthetic weights: ${name} is not a tensor of this config`);
      const n = shape.reduce((a, b) => a * b, 1);
      return randomNormal(name, n, STD, isLayerNormWeight(name) ? 1 : 0);
    },
  };
}

/** Rows [from, to) of the tied embedding / LM-head table, float32[(to − from)·H]. */
export function syntheticHeadRows(c: ModelConfig, from: number, to: number): Float32Array {
  return randomNormal(`${hfNames.embedTokens}[${from}:${to}]`, (to - from) * c.text.hidden);
}

/** The final RMSNorm weight, float32[H]. */
export function syntheticFinalNorm(c: ModelConfig): Float32Array {
  return randomNormal(hfNames.finalNorm, c.text.hidden);
}
