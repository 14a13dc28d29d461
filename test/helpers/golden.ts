/**
 * Access to the reference material beside the repository (`../shared`): golden outputs of transformers'
 * PaliGemma and the shapes model. Missing files throw: a parity test without its fixture fails.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const SHARED = process.env.PALIGEMMA_SHARED_DIR ?? resolve(REPO, "../shared");
export const GOLDEN_CASES = ["paligemma1-tiny", "paligemma2-tiny", "paligemma-shapes"] as const;
export type GoldenCase = (typeof GOLDEN_CASES)[number];
export const SHAPES_MODEL = join(SHARED, "models/paligemma-shapes");

export function goldenDir(name: string): string {
  const dir = join(SHARED, "golden", name);
  if (!existsSync(join(dir, "meta.json"))) throw new Error(`golden case ${name} is missing: expected ${dir}/meta.json`);
  return dir;
}

function bytes(path: string): Buffer {
  if (!existsSync(path)) throw new Error(`golden file missing: ${path}`);
  return readFileSync(path);
}

export function readF32(path: string): Float32Array {
  const b = bytes(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export function readI64(path: string): number[] {
  const b = bytes(path);
  return Array.from(new BigInt64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)), Number);
}

export interface Golden {
  readonly dir: string;
  readonly inputIds: number[];
  readonly pixelValues: Float32Array;
  readonly projectorOutput: Float32Array;
  readonly imageFeatures: Float32Array;
  readonly logits: Float32Array; // [L, vocab]
  readonly stepLogits: Float32Array; // [steps, vocab]
  readonly greedyIds: number[];
  readonly vocab: number;
}

export function loadGolden(name: string): Golden {
  const dir = goldenDir(name);
  const greedy = JSON.parse(bytes(join(dir, "greedy.json")).toString("utf8"));
  const config = JSON.parse(bytes(join(dir, "config.json")).toString("utf8"));
  return {
    dir,
    inputIds: readI64(join(dir, "input_ids.bin")),
    pixelValues: readF32(join(dir, "pixel_values.bin")),
    projectorOutput: readF32(join(dir, "projector_output.bin")),
    imageFeatures: readF32(join(dir, "image_features.bin")),
    logits: readF32(join(dir, "logits.bin")),
    stepLogits: readF32(join(dir, "greedy_step_logits.bin")),
    greedyIds: greedy.generated_ids,
    vocab: config.text_config.vocab_size,
  };
}

/** Max |a - b| with the worst index, for assertion messages. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; at: number } {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let max = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= max)) {
      max = d;
      at = i;
    }
  }
  return { max, at };
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

export function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}
